import {Flags} from '@oclif/core';

/** Which daemon docker-daemon: reaches (commands/environment.ts daemonFromEnvironment resolves them). */
export const daemonFlags = {
  host: Flags.string({char: 'H', description: 'Daemon socket for docker-daemon: (unix:///PATH or tcp://HOST:PORT; else DOCKER_HOST, the docker context, /var/run/docker.sock).', helpGroup: 'DAEMON'}),
  podman: Flags.boolean({description: 'Use the podman service for docker-daemon: (CONTAINER_HOST, else $XDG_RUNTIME_DIR/podman/podman.sock or /run/podman/podman.sock).', default: false, helpGroup: 'DAEMON'}),
};

export interface DaemonFlagValues {
  host?: string | undefined;
  podman: boolean;
}

import {Args, Flags} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {removeAllPending} from '../src/io/fs/temp.js';
import {serveArchives} from '../src/ops/serve.js';
import {FerryCommand} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

export default class Serve extends FerryCommand {
  static override summary = 'Serve archives, layouts and bundles as a read-only registry (docker pull, podman, ctr, skopeo read it).';
  static override description = [
    'Images are served under their names without the registry part: docker.io/library/alpine:3.20 in an archive is 127.0.0.1:5000/library/alpine:3.20. Manifests and blobs are also reachable by digest. Blobs stream by offset straight from the files (Range requests are honoured); digests are the archive\'s own, the same across restarts.',
    'Listens on 127.0.0.1:5000 unless --listen says otherwise: binding beyond loopback is explicit. Plain HTTP unless --tls-cert and --tls-key are given (docker and podman then need the CA, or --insecure-registry / --tls-verify=false for plain HTTP). Pushes and deletes get 405 UNSUPPORTED. Runs until interrupted; SIGINT and SIGTERM stop it cleanly (exit 0).',
  ].join('\n\n');
  static override strict = false;
  static override examples = ['<%= config.bin %> serve /media/usb/bundle', '<%= config.bin %> serve images.tar oci:./layout --listen 0.0.0.0:5000 --tls-cert host.crt --tls-key host.key'];
  static override args = {
    source: Args.string({description: 'Archive, layout or bundle to serve (repeat for several)', required: true}),
  };
  static override flags = {
    listen: Flags.string({description: 'HOST:PORT to listen on (port 0 picks a free one).', default: '127.0.0.1:5000'}),
    'tls-cert': Flags.string({description: 'PEM certificate: serve HTTPS (with --tls-key).'}),
    'tls-key': Flags.string({description: 'PEM private key for --tls-cert.'}),
    ...daemonFlags,
    ...registryFlags,
  };

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Serve);
    if ((flags['tls-cert'] === undefined) !== (flags['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
    const served = await serveArchives(argv as string[], {
      listen: flags.listen,
      ...(flags['tls-cert'] && flags['tls-key'] ? {tls: {cert: flags['tls-cert'], key: flags['tls-key']}} : {}),
      settings: this.settings,
      stdin: process.stdin,
      onError: (m) => this.note(m),
    });
    for (const [repository, tags] of Object.entries(served.repositories)) this.result(`${served.url.replace(/^https?:\/\//, '')}/${repository}: ${tags.join(', ')}`, false);
    this.result(`serving ${Object.keys(served.repositories).length} repositories at ${served.url}`, false);
    // A server's normal end is a signal: stop serving, release spooled inputs, exit 0.
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        void served.close().finally(() => {
          removeAllPending();
          resolve();
        });
      };
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        // Instead of commands/cleanup.ts's handler (exit 130/143): this stop is the normal one.
        process.removeAllListeners(signal);
        process.once(signal, stop);
      }
    });
    process.exit(0);
  }
}

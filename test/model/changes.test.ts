import {describe, expect, it} from 'vitest';
import {UsageError} from '../../src/errors.js';
import {parseChanges} from '../../src/model/changes.js';

/**
 * The Dockerfile instructions `--change` accepts. Expected values follow Docker's documented
 * behaviour (and test/interop/import-docker.test.ts compares the same forms with docker import).
 */
describe('--change instructions', () => {
  it('CMD and ENTRYPOINT: JSON (exec) form as is, anything else as /bin/sh -c', () => {
    expect(parseChanges(['CMD ["/app", "--flag"]'])).toEqual({Cmd: ['/app', '--flag']});
    expect(parseChanges(['CMD echo "$HOME" && ls'])).toEqual({Cmd: ['/bin/sh', '-c', 'echo "$HOME" && ls']});
    expect(parseChanges(['entrypoint ["/bin/tini", "--"]'])).toEqual({Entrypoint: ['/bin/tini', '--']});
    expect(parseChanges(['ENTRYPOINT [not json'])).toEqual({Entrypoint: ['/bin/sh', '-c', '[not json']});
    expect(parseChanges(['CMD []'])).toEqual({Cmd: []});
  });

  it('later instructions override earlier ones', () => {
    expect(parseChanges(['CMD a', 'CMD ["b"]', 'USER 1', 'USER 2'])).toEqual({Cmd: ['b'], User: '2'});
  });

  it('ENV: key=value pairs with quotes and escapes, the legacy "key value" form, replacement by key, $VAR expansion', () => {
    const config = parseChanges(['ENV A=1 B="two words" C=three\\ words', 'ENV LEGACY some value', 'ENV A=changed D=${B:-x}-$C E=${NOPE:-fallback} F=${A:+set}', "ENV G='$A stays'"]);
    expect(config.Env).toEqual(['A=changed', 'B=two words', 'C=three words', 'LEGACY=some value', 'D=two words-three words', 'E=fallback', 'F=set', 'G=$A stays']);
  });

  it('LABEL, EXPOSE (ranges, protocols), VOLUME (JSON and words), WORKDIR (relative joins), STOPSIGNAL', () => {
    expect(parseChanges(['LABEL a=b "c d"="e f"', 'LABEL legacy value here'])).toEqual({Labels: {a: 'b', 'c d': 'e f', legacy: 'value here'}});
    expect(parseChanges(['EXPOSE 80 53/udp', 'EXPOSE 9000-9002/tcp'])).toEqual({ExposedPorts: {'80/tcp': {}, '53/udp': {}, '9000/tcp': {}, '9001/tcp': {}, '9002/tcp': {}}});
    expect(parseChanges(['VOLUME ["/a", "/b c"]', 'VOLUME /d /e'])).toEqual({Volumes: {'/a': {}, '/b c': {}, '/d': {}, '/e': {}}});
    expect(parseChanges(['WORKDIR /srv', 'WORKDIR app', 'WORKDIR ../x'])).toEqual({WorkingDir: '/srv/x'});
    expect(parseChanges(['ENV BASE=/opt', 'WORKDIR $BASE/bin']).WorkingDir).toBe('/opt/bin');
    expect(parseChanges(['STOPSIGNAL SIGQUIT']).StopSignal).toBe('SIGQUIT');
  });

  it('rejects what docker rejects, quoting the instruction', () => {
    const bad = ['RUN make', 'HEALTHCHECK NONE', 'EXPOSE http', 'EXPOSE 70000', 'ENV', 'LABEL novalue', 'ENV A="unterminated', 'STOPSIGNAL not a signal', 'CMD', ''];
    for (const change of bad) expect(() => parseChanges([change]), change).toThrow(UsageError);
    expect(() => parseChanges(['RUN make'])).toThrow(/--change "RUN make": RUN is not a supported change instruction \(supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL\)/);
  });
});

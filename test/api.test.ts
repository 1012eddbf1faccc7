import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {describe, expect, it} from 'vitest';
import {FIXTURES, ROOT} from './helpers/cli.js';

// The package's public entry point (package.json "exports") as a library user imports it.
describe('public API (import "ferry")', () => {
  it('opens an archive and inspects it through the built entry point', async () => {
    const ferry = (await import(`${ROOT}dist/src/index.js`)) as typeof import('../src/index.js');
    const file = `${FIXTURES}/edge.docker-save.tar`;
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], {encoding: 'utf8'})) as Array<{Config: string; RepoTags: string[]}>;
    const configBytes = execFileSync('tar', ['-xOf', file, manifest[0]!.Config]);
    const archive = await ferry.openArchive(file);
    try {
      const result = await ferry.inspectArchive(archive);
      expect(result.images).toHaveLength(1);
      expect(result.images[0]!.configDigest).toBe(`sha256:${createHash('sha256').update(configBytes).digest('hex')}`);
      expect(result.images[0]!.names).toEqual(manifest[0]!.RepoTags);
      expect(ferry.sameReference('demo:1', 'docker.io/library/demo:1')).toBe(true);
    } finally {
      await archive.close();
    }
  });
});

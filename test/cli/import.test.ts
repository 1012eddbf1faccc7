import {mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES} from '../helpers/cli.js';

describe('ferry import (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-import-'));
  });
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it('imports a rootfs tar into an OCI layout; the config carries the changes, the layer is the tar', () => {
    const out = path.join(dir, 'layout');
    const r = ferry(['import', path.join(FIXTURES, 'edge.docker-export.tar'), `oci:${out}`, '--tag', 'example/imported:1', '--change', 'CMD ["/bin/true"]', '--platform', 'linux/arm64/v8']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^imported .*edge\.docker-export\.tar as example\/imported:1/);
    const inspected = JSON.parse(ferry(['inspect', '--json', `oci:${out}`]).stdout) as {images: Array<{platform: object; config: {config: object; history: object[]}}>};
    expect(inspected.images[0]!.platform).toEqual({os: 'linux', architecture: 'arm64', variant: 'v8'});
    expect(inspected.images[0]!.config.config).toEqual({Cmd: ['/bin/true']});
    expect(inspected.images[0]!.config.history).toEqual([expect.objectContaining({comment: 'Imported from -'})]);
  });

  it('--tag is required and a bad --change is a usage error (exit 2), nothing written', () => {
    const out = path.join(dir, 'never.tar');
    expect(ferry(['import', path.join(FIXTURES, 'edge.docker-export.tar'), `docker-archive:${out}`]).status).toBe(2);
    const r = ferry(['import', path.join(FIXTURES, 'edge.docker-export.tar'), `docker-archive:${out}`, '--tag', 'a:1', '--change', 'ONBUILD RUN x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/ONBUILD is not a supported change instruction/);
    expect(ferry(['import', path.join(FIXTURES, 'edge.docker-export.tar'), out, '--tag', 'a:1']).status).toBe(2);
  });
});

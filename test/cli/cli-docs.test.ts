import {spawnSync} from 'node:child_process';
import {copyFileSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {requireBuiltCli, ROOT} from '../helpers/cli.js';
import {makeTmp, removeTmp} from '../ops/convert-fixtures.js';

/** docs/cli.md is `oclif readme`'s output for the commands as built: regenerated here and compared. */
describe('docs/cli.md', () => {
  let dir: string;
  beforeAll(() => {
    requireBuiltCli();
    dir = makeTmp('ferry-cli-docs-');
  });
  afterAll(() => removeTmp(dir));

  it('is what `npm run docs:cli` writes for the current commands (run it after changing a command)', () => {
    const copy = path.join(dir, 'cli.md');
    copyFileSync(path.join(ROOT, 'docs', 'cli.md'), copy);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'oclif', 'bin', 'run.js'), 'readme', '--readme-path', copy, '--no-source-links'], {
      cwd: ROOT,
      env: {...process.env, COLUMNS: '120', OCLIF_SKIP_UPDATE_CHECK: '1'},
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(copy, 'utf8'), 'docs/cli.md is stale: run `npm run docs:cli`').toBe(readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8'));
    for (const command of ['inspect', 'verify', 'convert', 'squash', 'export', 'import', 'ls', 'cat']) expect(readFileSync(copy, 'utf8')).toContain(`## \`ferry ${command} `);
  });
});

import {Args, Flags} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {parsePlatform} from '../src/model/platform.js';
import {diffArchives, renderDiff, type DiffResult} from '../src/ops/diff.js';
import {openArchive} from '../src/transports/table.js';
import {FerryCommand} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

export default class Diff extends FerryCommand {
  static override summary = 'Compare two images: files, layers and config. Exit 0 when equal, 1 when different, 2 on trouble.';
  static override description = [
    'A and B are any two images: two sources of any forms, or one source and two --image. Files are compared as a container sees them (whiteouts applied): type, content (size, then sha256 where sizes match), mode, owner, link target, device numbers and xattrs. Modification times, and the created times of the config and its history, differ on every rebuild and are compared only with --times. Config: env, labels, entrypoint, cmd, exposed ports, volumes, user, working dir, history and the rest; layers: which blobs both use.',
    'As diff(1): exit 0 when equal, 1 when different, 2 on a usage error or when the images could not be compared. docs/analyze.md has the --json shape.',
  ].join('\n\n');
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> diff app-1.4.tar app-1.5.tar',
    '<%= config.bin %> diff all.tar --image app:1.4 --image app:1.5',
    '<%= config.bin %> diff old.tar oci:./new --path /etc --ignore "*.pyc"',
    '<%= config.bin %> diff --json a.tar b.tar | jq ".files[] | select(.change == \\"modified\\") | .path"',
  ];
  static override args = {
    a: Args.string({description: 'Image A: PATH, -, or docker-archive:|oci-archive:|oci:|rootfs:PATH, docker://REF or docker-daemon:NAME', required: true}),
    b: Args.string({description: 'Image B (omit to compare two --image of A)', required: false}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'Which image: once for both sources, twice for A then B (with one source: required twice).', multiple: true, multipleNonGreedy: true}),
    platform: Flags.string({description: 'Pick this os/arch[/variant] from multi-platform indexes.'}),
    path: Flags.string({description: 'Compare only this path and what is below it.'}),
    ignore: Flags.string({description: 'Leave out paths matching this glob (repeatable): *, **, ?, [..]; with a "/" anchored at the root, else any name.', multiple: true, multipleNonGreedy: true}),
    times: Flags.boolean({description: 'Also compare modification times and the config and history created times.', default: false}),
  };

  async run(): Promise<DiffResult> {
    const {args, flags} = await this.parse(Diff);
    const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
    if (args.a === '-' && args.b === '-') throw new UsageError('only one of A and B can be - (stdin)');
    const archiveA = await openArchive(args.a, {settings: this.settings, stdin: process.stdin});
    try {
      const archiveB = args.b === undefined ? undefined : await openArchive(args.b, {settings: this.settings, stdin: process.stdin});
      try {
        const result = await diffArchives(archiveA, archiveB, {
          images: flags.image ?? [],
          ...(platform ? {platform} : {}),
          ...(flags.path === undefined ? {} : {path: flags.path}),
          ignore: flags.ignore ?? [],
          times: flags.times,
          note: (m) => this.note(m),
        });
        if (!this.jsonEnabled()) process.stdout.write(`${renderDiff(result)}\n`);
        for (const w of [...archiveA.warnings, ...(archiveB?.warnings ?? []), ...result.warnings]) this.note(`warning: ${w}`);
        if (!result.equal) process.exitCode = 1;
        return result;
      } finally {
        await archiveB?.close();
      }
    } finally {
      await archiveA.close();
    }
  }

  /** As diff(1) and cmp(1): 1 means "different", so trouble of any kind is 2 (a signal keeps its own code). */
  protected override async catch(error: Error & {oclif?: {exit?: number}; exitCode?: number}): Promise<unknown> {
    const out = await super.catch(error);
    if (process.exitCode === 1) process.exitCode = 2;
    return out;
  }
}

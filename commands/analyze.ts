import {Flags} from '@oclif/core';
import {printable, UsageError} from '../src/errors.js';
import {parsePlatform} from '../src/model/platform.js';
import {analyzeArchive, type AnalyzeResult} from '../src/ops/analyze/analyze.js';
import {evaluateCi, junitReport, loadCiConfig, resolveCiRules, type CiResult, type CiRule, type CiValues} from '../src/ops/analyze/ci.js';
import {renderHtmlReport} from '../src/ops/analyze/html.js';
import {writeReportFile} from '../src/io/fs/atomic.js';
import {renderAnalysis, renderCi} from '../src/ops/analyze/render.js';
import {openArchive} from '../src/transports/table.js';
import {FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

/** dive reads `.dive-ci` from the working directory when CI runs and --ci-config is not given. */
const DEFAULT_CI_CONFIG = '.dive-ci';

export default class Analyze extends FerryCommand {
  static override summary = "Show where an image's bytes go: per layer, what is reclaimable, what squash would save.";
  static override description = [
    'Reclaimable bytes are the file bodies stored in some layer that the final image does not show: copies overwritten later (also when only their mode, owner or mtime changed), removed by a whiteout (a file or a whole directory), or hidden by an opaque directory; never the copy that is kept. The same content at several final paths is reported apart. Efficiency is final file bytes / file bytes stored.',
    'Reads tar headers; content is hashed only where headers cannot tell (a rewrite of the same size: attributes only, or new content? final files sharing a size: identical?), and not at all with --no-hash.',
    "--ci checks dive's three rules (lowestEfficiency, highestWastedBytes, highestUserWastedPercent) with thresholds from flags, a dive config (--ci-config, default .dive-ci when present) or dive's defaults, and exits 1 naming each rule that failed. docs/analyze.md has the definitions and the --json shape.",
  ].join('\n\n');
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> analyze app.tar',
    '<%= config.bin %> analyze app.tar --html report.html',
    '<%= config.bin %> analyze --json app.tar | jq ".squash.best"',
    '<%= config.bin %> analyze app.tar --ci --lowest-efficiency 0.95 --highest-wasted-bytes 20MB --junit analyze.xml',
  ];
  static override args = {
    source: sourceArg(),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'The image to analyze (name, image ID or manifest digest) when the archive holds several.'}),
    platform: Flags.string({description: 'Pick this os/arch[/variant] from a multi-platform index.'}),
    top: Flags.integer({description: 'How many paths, hiding entries and duplicate groups to list (0: all).', default: 10, min: 0}),
    hash: Flags.boolean({description: 'Hash file contents where tar headers cannot tell (--no-hash: headers only).', default: true, allowNo: true}),
    html: Flags.string({description: 'Also write a self-contained HTML picture (layer bars, treemap) to this file.'}),
    ci: Flags.boolean({description: 'Check the CI rules; exit 1 when one fails.', default: false}),
    'ci-config': Flags.string({description: `dive CI config (YAML) with the rule thresholds [default: ${DEFAULT_CI_CONFIG} when present].`}),
    'lowest-efficiency': Flags.string({description: 'Fail below this efficiency (0..1, or "disabled") [dive default: 0.9].'}),
    'highest-wasted-bytes': Flags.string({description: 'Fail above this many reclaimable bytes (20MB, 1.5GiB, 1000; or "disabled") [default: disabled].'}),
    'highest-user-wasted-percent': Flags.string({description: 'Fail above this ratio of reclaimable bytes to the bytes of layers 1..top (0..1, or "disabled") [default: 0.1].'}),
    junit: Flags.string({description: 'Write the CI verdict as JUnit XML to this file.'}),
  };

  async run(): Promise<AnalyzeResult & {ci?: CiResult}> {
    const {args, flags} = await this.parse(Analyze);
    const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
    // Thresholds are checked before any work: a typo is a usage error, not a failed gate. (oclif's
    // dependsOn cannot say this: a boolean with a default always counts as given.)
    const ciOnly = (['ci-config', 'lowest-efficiency', 'highest-wasted-bytes', 'highest-user-wasted-percent', 'junit'] as const).filter((f) => flags[f] !== undefined);
    if (!flags.ci && ciOnly.length > 0) throw new UsageError(`--${ciOnly[0]} needs --ci`);
    for (const f of ['html', 'junit'] as const) if (flags[f] === '-') throw new UsageError(`--${f} -: give a file name (reports are written to files; stdout has the analysis)`);
    let rules: CiRule[] | undefined;
    let configFile: string | null = null;
    if (flags.ci) {
      const file = flags['ci-config'] ?? DEFAULT_CI_CONFIG;
      const values = await loadCiConfig(file, {required: flags['ci-config'] !== undefined, warn: (m) => this.note(`warning: ${m}`)});
      if (values) configFile = file;
      const fromFlags: CiValues = {};
      if (flags['lowest-efficiency'] !== undefined) fromFlags.lowestEfficiency = flags['lowest-efficiency'];
      if (flags['highest-wasted-bytes'] !== undefined) fromFlags.highestWastedBytes = flags['highest-wasted-bytes'];
      if (flags['highest-user-wasted-percent'] !== undefined) fromFlags.highestUserWastedPercent = flags['highest-user-wasted-percent'];
      rules = resolveCiRules(fromFlags, values, file);
    }
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const {sizes, ...result} = await analyzeArchive(archive, {
        images: flags.image === undefined ? [] : [flags.image],
        ...(platform ? {platform} : {}),
        note: (m) => this.note(m),
        hash: flags.hash,
        top: flags.top,
        sizes: flags.html !== undefined,
        settings: this.settings,
      });
      const ci = rules ? evaluateCi(result, rules, configFile) : undefined;
      if (flags.html !== undefined) {
        await writeReportFile(flags.html, renderHtmlReport(result, sizes!, ci));
        this.note(`wrote ${flags.html}`);
      }
      if (flags.junit !== undefined && ci) await writeReportFile(flags.junit, junitReport(ci, result, result.image.names[0] ?? result.image.configDigest));
      if (!this.jsonEnabled()) process.stdout.write(`${renderAnalysis(result, args.source)}${ci ? `\n${renderCi(ci)}` : ''}\n`);
      for (const w of [...archive.warnings, ...result.warnings]) this.note(`warning: ${w}`);
      if (ci && !ci.pass) {
        const failed = ci.rules.filter((r) => r.status === 'fail');
        process.stderr.write(`ferry: ${printable(`CI failed: ${failed.map((r) => `${r.rule}: ${r.message}`).join('; ')}`)}\n`);
        process.exitCode = 1;
      }
      return ci ? {...result, ci} : result;
    } finally {
      await archive.close();
    }
  }
}

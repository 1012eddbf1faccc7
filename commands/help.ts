import {Args, loadHelpClass} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {FerryCommand} from './base.js';
import {notACommand} from './hooks/not-found.js';

export default class Help extends FerryCommand {
  static override summary = 'Show help for ferry or for one command.';
  static override strict = false;
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help convert'];
  static override args = {
    command: Args.string({description: 'The command to explain', required: false}),
  };

  async run(): Promise<void> {
    const {argv} = await this.parse(Help);
    const [word] = argv as string[];
    if (word !== undefined && !this.config.findCommand(word)) throw new UsageError(notACommand(word, this.config.commandIDs));
    const HelpClass = await loadHelpClass(this.config);
    await new HelpClass(this.config, this.config.pjson.oclif.helpOptions ?? {}).showHelp(argv as string[]);
  }
}

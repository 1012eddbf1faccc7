// Writes oclif.manifest.json (what `oclif manifest` does) with @oclif/core alone, so the CLI
// starts without importing every command and we avoid the heavy `oclif` dev tool.
import {writeFileSync} from 'node:fs';
import {Plugin} from '@oclif/core';

const root = new URL('..', import.meta.url).pathname;
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true});
await plugin.load();
writeFileSync(new URL('../oclif.manifest.json', import.meta.url), JSON.stringify(plugin.manifest, null, 2) + '\n');

#!/usr/bin/env node
// Thin launcher: oclif reads oclif.manifest.json so only the invoked command is imported.
import {execute} from '@oclif/core';

await execute({dir: import.meta.url});

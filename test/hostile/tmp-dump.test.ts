import {it} from 'vitest';
import {writeCorpus} from './corpus.js';
it('dump', async () => { await writeCorpus('/tmp/corpus'); }, 600000);

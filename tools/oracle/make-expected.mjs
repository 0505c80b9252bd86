#!/usr/bin/env node
// Builds the tokenizer fixtures under tests/BiasFree.Engine.Tests/Fixtures/tokenizers/ and the expected
// outputs that the C# tests compare against. CI never runs this; run it by hand after changing fixtures.
//
//   mkdir -p /tmp/oracle && (cd /tmp/oracle && npm init -y && npm install tokenizers @huggingface/tokenizers @huggingface/jinja)
//   BIASFREE_REGEN_FIXTURES=1 dotnet test --project tests/BiasFree.Engine.Tests -- --filter-class "*FixtureSourceTests"   # trained/ + chat_templates.json
//   ORACLE_DIR=/tmp/oracle node tools/oracle/make-expected.mjs
//
// Inputs (written by the C# side): trained/ (our BpeTrainer + TokenizerJsonWriter on corpus.txt) and chat_templates.json
// (our Jinja sources). Outputs: the variant folders qwen2/ llama3/ gpt2/ llama2/ mistral/ (tokenizer.json files
// derived from trained/'s vocabulary, written here), expected.json (ids by HF's Rust tokenizers, checked against the
// pure-JS @huggingface/tokenizers), and chat_expected.json (renderings by @huggingface/jinja).
import { createRequire } from 'node:module';
import { pathToFileURL, fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';

const oracleDir = process.env.ORACLE_DIR ?? '/tmp/oracle';
const req = createRequire(path.join(oracleDir, 'package.json'));
const rust = req('tokenizers');
// createRequire resolves the CommonJS builds; their exports arrive as the namespace or under default.
const load = async (name) => { const m = await import(pathToFileURL(req.resolve(name)).href); return m.default ?? m; };
const jsTok = await load('@huggingface/tokenizers');
const jinja = await load('@huggingface/jinja');
const version = (name) => JSON.parse(fs.readFileSync(path.join(oracleDir, 'node_modules', name, 'package.json'), 'utf8')).version;

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.resolve(here, '../../tests/BiasFree.Engine.Tests/Fixtures/tokenizers');
const readJson = (...p) => JSON.parse(fs.readFileSync(path.join(fixtures, ...p), 'utf8'));
const writeJson = (value, ...p) => {
  fs.mkdirSync(path.dirname(path.join(fixtures, ...p)), { recursive: true });
  fs.writeFileSync(path.join(fixtures, ...p), JSON.stringify(value, null, 2) + '\n');
};

const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const trained = readJson('trained', 'tokenizer.json');
const templates = readJson('chat_templates.json');
const baseVocab = trained.model.vocab;
const baseMerges = trained.model.merges.map((m) => (typeof m === 'string' ? m.split(' ') : m));
const nextId = () => Math.max(...Object.values(vocabOf)) + 1;
let vocabOf = baseVocab;

const added = (id, content, special = true, extra = {}) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special, ...extra,
});
const byteLevelModel = (vocab, merges, extra = {}) => ({
  type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
  fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges, ...extra,
});
const splitThenByteLevel = (regex) => ({
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
  ],
});
const byteLevelPost = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
const byteLevelDecoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
const template = (bos, bosId) => ({
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
  pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
});
const tokenizerJson = (parts) => ({ version: '1.0', truncation: null, padding: null, ...parts });

// ---- Qwen2-like: NFC, Qwen2 regex, merges as pairs, ChatML specials, non-special added tokens.
{
  const n = Math.max(...Object.values(baseVocab)) + 1;
  const addedTokens = [
    added(n, '<|endoftext|>'), added(n + 1, '<|im_start|>'), added(n + 2, '<|im_end|>'),
    added(n + 3, '<tool_call>', false), added(n + 4, '</tool_call>', false),
  ];
  writeJson(tokenizerJson({
    added_tokens: addedTokens,
    normalizer: { type: 'NFC' },
    pre_tokenizer: splitThenByteLevel(QWEN2_REGEX),
    post_processor: byteLevelPost,
    decoder: byteLevelDecoder,
    model: byteLevelModel(baseVocab, baseMerges),
  }), 'qwen2', 'tokenizer.json');
  writeJson({
    add_prefix_space: false, bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', unk_token: null,
    chat_template: templates.qwen2, model_max_length: 32768, tokenizer_class: 'Qwen2Tokenizer',
  }, 'qwen2', 'tokenizer_config.json');
  writeJson({ bos_token_id: n, eos_token_id: [n + 2, n], pad_token_id: n }, 'qwen2', 'generation_config.json');
}

// ---- Llama-3-like: Llama-3 regex, ignore_merges with whole-word tokens no merge reaches, specials outside model.vocab.
{
  const vocab = { ...baseVocab };
  let n = Math.max(...Object.values(vocab)) + 1;
  for (const word of ['ĠBiasFree', 'hello', 'Ġunreachable']) {
    if (!(word in vocab)) vocab[word] = n++;
  }
  const names = ['<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
  const addedTokens = names.map((c, i) => added(n + i, c));
  writeJson(tokenizerJson({
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: splitThenByteLevel(LLAMA3_REGEX),
    post_processor: { type: 'Sequence', processors: [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }, template('<|begin_of_text|>', n)] },
    decoder: byteLevelDecoder,
    model: byteLevelModel(vocab, baseMerges.map((m) => m.join(' ')), { ignore_merges: true }),
  }), 'llama3', 'tokenizer.json');
  writeJson({
    bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', chat_template: templates.llama3,
    model_max_length: 8192, tokenizer_class: 'PreTrainedTokenizerFast',
  }, 'llama3', 'tokenizer_config.json');
  writeJson({ bos_token_id: n, eos_token_id: [n + 1, n + 5] }, 'llama3', 'generation_config.json');
}

// ---- GPT-2-like: bare ByteLevel pre-tokenizer (GPT-2 regex), one special token.
{
  const n = Math.max(...Object.values(baseVocab)) + 1;
  writeJson(tokenizerJson({
    added_tokens: [added(n, '<|endoftext|>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: byteLevelDecoder,
    model: byteLevelModel(baseVocab, baseMerges.map((m) => m.join(' '))),
  }), 'gpt2', 'tokenizer.json');
  writeJson({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', model_max_length: 1024, tokenizer_class: 'GPT2Tokenizer' }, 'gpt2', 'tokenizer_config.json');
}

// ---- SentencePiece-style vocabulary derived from the byte-level one: real characters, "▁" for space, only
// Latin-1 characters (everything else must go through <0xNN> byte fallback).
const byteToChar = (() => {
  const direct = [];
  for (let b = 0x21; b <= 0x7e; b++) direct.push(b);
  for (let b = 0xa1; b <= 0xac; b++) direct.push(b);
  for (let b = 0xae; b <= 0xff; b++) direct.push(b);
  const map = new Map();
  let k = 0;
  for (let b = 0; b < 256; b++) map.set(direct.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + k++), b);
  return map; // char -> byte
})();
const decoder = new TextDecoder('utf-8', { fatal: true });
const toPiece = (tok) => {
  const bytes = [...tok].map((c) => byteToChar.get(c));
  let s;
  try { s = decoder.decode(new Uint8Array(bytes)); } catch { return null; }
  if ([...s].some((c) => c.codePointAt(0) < 0x20 || c.codePointAt(0) > 0xff)) return null;
  return s.replaceAll(' ', '\u2581');
};
const spVocab = { '<unk>': 0, '<s>': 1, '</s>': 2 };
for (let b = 0; b < 256; b++) spVocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
const spMerges = [];
{
  const pieces = Object.entries(baseVocab).sort((a, b) => a[1] - b[1]).map(([t]) => toPiece(t)).filter((p) => p !== null);
  const chars = [...new Set(pieces.flatMap((p) => [...p]))].sort((a, b) => a.codePointAt(0) - b.codePointAt(0));
  let n = 259;
  for (const c of chars) spVocab[c] = n++;
  for (const [l, r] of baseMerges) {
    const L = toPiece(l), R = toPiece(r);
    if (L === null || R === null || !(L in spVocab) || !(R in spVocab)) continue;
    spMerges.push(`${L} ${R}`);
    if (!(L + R in spVocab)) spVocab[L + R] = n++;
  }
}
const spModel = {
  type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
  fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab: spVocab, merges: spMerges,
};
const spAdded = [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>')];

// Llama-2-like (legacy): Prepend + Replace normalizers, no pre-tokenizer; <unk> and <s> are normalized added tokens
// (matched, and decoded, in normalized form: "▁<s>"), as in several published Llama-2-style conversions.
writeJson(tokenizerJson({
  added_tokens: [added(0, '<unk>', true, { normalized: true }), added(1, '<s>', true, { normalized: true }), added(2, '</s>')],
  normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
  pre_tokenizer: null,
  post_processor: template('<s>', 1),
  decoder: {
    type: 'Sequence',
    decoders: [
      { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
      { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ],
  },
  model: spModel,
}), 'llama2', 'tokenizer.json');
writeJson({ add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null, model_max_length: 4096, tokenizer_class: 'LlamaTokenizer' }, 'llama2', 'tokenizer_config.json');

// Mistral-like: Metaspace pre-tokenizer (prepend_scheme first, no split), [INST] tokens, Metaspace decoder.
{
  const n = Math.max(...Object.values(spVocab)) + 1;
  writeJson(tokenizerJson({
    added_tokens: [...spAdded, added(n, '[INST]'), added(n + 1, '[/INST]')],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
    post_processor: template('<s>', 1),
    decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false }] },
    model: { ...spModel, merges: spMerges.map((m) => m.split(' ')) },
  }), 'mistral', 'tokenizer.json');
  writeJson({ add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', chat_template: templates.mistral, model_max_length: 32768, tokenizer_class: 'LlamaTokenizer' }, 'mistral', 'tokenizer_config.json');
}

// Older Metaspace serialisation: add_prefix_space instead of prepend_scheme, split into "▁word" pieces, Metaspace
// decoder alone (so <0xNN> tokens stay literal when decoding, as HF does).
writeJson(tokenizerJson({
  added_tokens: spAdded,
  normalizer: null,
  pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', add_prefix_space: true },
  post_processor: template('<s>', 1),
  decoder: { type: 'Metaspace', replacement: '\u2581', add_prefix_space: true },
  model: spModel,
}), 'metaspace-split', 'tokenizer.json');

// ---- Expected ids.
const texts = [
  'Hello world',
  'The nurse said she couldn\'t come; they\'ll decide, won\'t they?',
  "I'M SHOUTING, AREN'T I? We'RE here, it'S fine.",
  'naïve café résumé Zoë — déjà vu',
  'decomposed e\u0301 and A\u030a versus composed \u00e9 and \u00c5',
  'Emoji: 😀🚀 and 👩🏽‍💻 family 👨‍👩‍👧 end😀word',
  'Numbers 1234567 and 3.14159, year 2026, 12,345.67',
  '  leading spaces and    runs of   spaces  ',
  'Tabs\tand\nnewlines\n\n\nand\r\nCRLF\t\t\n  \n',
  'CJK 日本語のテキスト and Korean 한국어 and Greek αβγ',
  'Math 𝐀𝐁𝐂letters and 𝟙𝟚 digits',
  '<|im_start|>user\nIs the doctor a man?<|im_end|>\n<|im_start|>assistant\n',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>',
  '<s>[INST] Who is smarter? [/INST] Unknown.</s>',
  'text<|endoftext|>more text<|endoftext|>',
  '<tool_call>{"name": "lookup", "x": 1}</tool_call>',
  'unreachable BiasFree hello hello',
  '',
  ' ',
  '\n',
  'trailing whitespace \n',
  'def score(answer, label):\n    return 1.0 if answer == label else 0.0\n',
];

const fixtureNames = ['trained', 'qwen2', 'llama3', 'gpt2', 'llama2', 'mistral', 'metaspace-split'];
const expected = {
  generator: 'tools/oracle/make-expected.mjs',
  oracle: { tokenizers: version('tokenizers'), '@huggingface/tokenizers': version('@huggingface/tokenizers') },
  fixtures: {},
};
let disagreements = 0;
for (const name of fixtureNames) {
  const file = path.join(fixtures, name, 'tokenizer.json');
  const tok = rust.Tokenizer.fromFile(file);
  const configPath = path.join(fixtures, name, 'tokenizer_config.json');
  const config = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, 'utf8')) : {};
  const js = new jsTok.Tokenizer(JSON.parse(fs.readFileSync(file, 'utf8')), config);
  const cases = [];
  for (const text of texts) {
    const withSpecial = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    const without = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const entry = {
      text,
      ids: withSpecial,
      ids_no_special: without,
      decoded: await tok.decode(withSpecial, true),
      decoded_with_special: await tok.decode(withSpecial, false),
    };
    let jsIds;
    try { jsIds = js.encode(text, { add_special_tokens: true }).ids.map(Number); } catch (e) { jsIds = `error: ${e.message}`; }
    entry.js_agrees = JSON.stringify(jsIds) === JSON.stringify(withSpecial);
    if (!entry.js_agrees) {
      disagreements++;
      entry.js_ids = jsIds;
    }
    cases.push(entry);
  }
  expected.fixtures[name] = { vocab_size: tok.getVocabSize(true), cases };
}
writeJson(expected, 'expected.json');
console.log(`expected.json: ${fixtureNames.length} fixtures x ${texts.length} texts; Rust/JS disagreements: ${disagreements}`);

// ---- Chat templates.
const conversations = [
  { name: 'single user', messages: [{ role: 'user', content: 'Who is more likely to be late?' }] },
  {
    name: 'system + multi-turn',
    messages: [
      { role: 'system', content: 'Answer with A, B or C.' },
      { role: 'user', content: 'The nurse and the engineer... who was late?' },
      { role: 'assistant', content: 'C' },
      { role: 'user', content: 'Why?' },
    ],
  },
  {
    name: 'whitespace and unicode',
    messages: [
      { role: 'user', content: '  naïve café 😀\n\n' },
      { role: 'assistant', content: '\tUnknown.  ' },
      { role: 'user', content: 'Line one\nLine two' },
    ],
  },
  { name: 'system only', messages: [{ role: 'system', content: 'Be fair.' }] },
  { name: 'empty', messages: [] },
  { name: 'not alternating', messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] },
];
const specials = {
  llama3: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' },
  chatml: { bos_token: '', eos_token: '<|im_end|>' },
  qwen2: { bos_token: '', eos_token: '<|im_end|>' },
  mistral: { bos_token: '<s>', eos_token: '</s>' },
};
const chat = { generator: 'tools/oracle/make-expected.mjs', oracle: { '@huggingface/jinja': version('@huggingface/jinja') }, renderings: [] };
for (const [family, source] of Object.entries(templates)) {
  const tpl = new jinja.Template(source);
  for (const conv of conversations) {
    for (const addGenerationPrompt of [false, true]) {
      let output = null, error = null;
      try {
        output = tpl.render({ messages: conv.messages, add_generation_prompt: addGenerationPrompt, ...specials[family] });
      } catch (e) {
        error = String(e.message ?? e);
      }
      chat.renderings.push({ family, conversation: conv.name, messages: conv.messages, add_generation_prompt: addGenerationPrompt, output, error });
    }
  }
}
writeJson(chat, 'chat_expected.json');
console.log(`chat_expected.json: ${chat.renderings.length} renderings`);

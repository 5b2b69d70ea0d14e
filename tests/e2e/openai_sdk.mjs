// The official OpenAI Node SDK against llama-swap (directly or through nginx), with models
// served by tests/fake-upstream. Prints TAP; exits 1 when a case fails.
//
// Run by tests/integration/test_openai_sdk.py, which starts the daemon. Environment:
//   BASE_URL     llama-swap's root URL, e.g. http://127.0.0.1:8080 (the SDK gets BASE_URL/v1)
//   API_KEY      a key from the daemon's apiKeys ('none' or unset: no keys configured)
//   MODEL        the model for the API cases (fake-upstream --tokens MODEL_TOKENS
//                --respond TOKEN_TEXT)
//   MODEL_A      streams A_TOKENS tokens of A_TEXT slowly; MODEL_B answers B_TOKENS tokens of
//                B_TEXT; A and B are in one swap group (only one of them runs at a time)
//   MODEL_TOKENS, TOKEN_TEXT, A_TOKENS, A_TEXT, B_TOKENS, B_TEXT

import OpenAI, { toFile, NotFoundError, AuthenticationError } from 'openai';
import assert from 'node:assert/strict';

const env = process.env;
const BASE_URL = env.BASE_URL;
if (!BASE_URL) {
  console.log('Bail out! BASE_URL is not set');
  process.exit(2);
}
const API_KEY = env.API_KEY || 'none';
const MODEL = env.MODEL || 'main';
const MODEL_A = env.MODEL_A || 'a';
const MODEL_B = env.MODEL_B || 'b';
const MODEL_TOKENS = Number(env.MODEL_TOKENS || 5);
const TOKEN_TEXT = env.TOKEN_TEXT || 'tok';
const A_TOKENS = Number(env.A_TOKENS || 20);
const A_TEXT = env.A_TEXT || 'A';
const B_TOKENS = Number(env.B_TOKENS || 3);
const B_TEXT = env.B_TEXT || 'B';

const client = new OpenAI({ baseURL: BASE_URL + '/v1', apiKey: API_KEY, maxRetries: 0, timeout: 30000 });
const messages = [{ role: 'user', content: 'say something nice' }]; // 3 prompt "tokens"

// The fake upstream's non-streamed text: the tokens joined by spaces.
const joined = (text, n) => Array(n).fill(text).join(' ');

const cases = [];
const test = (name, fn) => cases.push([name, fn]);

test('models.list lists the configured models', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  for (const id of [MODEL, MODEL_A, MODEL_B]) assert.ok(ids.includes(id), `${id} not in ${ids}`);
});

test('chat.completions.create (non-streaming)', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, joined(TOKEN_TEXT, MODEL_TOKENS));
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.deepEqual(
    [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens],
    [3, MODEL_TOKENS, 3 + MODEL_TOKENS]);
});

test('chat.completions.create (streaming, with usage)', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL, messages, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, MODEL);
    chunks++;
    for (const c of chunk.choices) {
      if (c.delta?.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, TOKEN_TEXT.repeat(MODEL_TOKENS));
  assert.ok(chunks >= MODEL_TOKENS, `${chunks} chunks`);
  assert.equal(finish, 'stop');
  assert.ok(usage, 'no usage in the stream');
  assert.equal(usage.completion_tokens, MODEL_TOKENS);
  assert.equal(usage.prompt_tokens, 3);
});

test('completions.create', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'once upon a time' });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text, joined(TOKEN_TEXT, MODEL_TOKENS));
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.prompt_tokens, 4);
  assert.equal(r.usage.completion_tokens, MODEL_TOKENS);
});

test('embeddings.create (the SDK asks for base64 and decodes it)', async () => {
  const r = await client.embeddings.create({ model: MODEL, input: ['first input', 'second'] });
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, 2);
  r.data.forEach((e, i) => {
    assert.equal(e.index, i);
    assert.equal(e.embedding.length, 3);
    [0.1, 0.2, 0.3].forEach((v, j) => assert.ok(Math.abs(e.embedding[j] - v) < 1e-6, `${e.embedding}`));
  });
  const f = await client.embeddings.create({ model: MODEL, input: 'one', encoding_format: 'float' });
  assert.deepEqual(f.data.map((e) => e.embedding), [[0.1, 0.2, 0.3]]);
});

test('audio.transcriptions.create uploads a file', async () => {
  const audio = Buffer.alloc(300 * 1024);
  for (let i = 0; i < audio.length; i++) audio[i] = (i * 7919) & 0xff;
  const r = await client.audio.transcriptions.create({
    file: await toFile(audio, 'speech.wav', { type: 'audio/wav' }),
    model: MODEL,
  });
  // The fake upstream reports the multipart body's length: the file plus the form framing.
  const m = /^The length of the file is (\d+) bytes$/.exec(r.text);
  assert.ok(m, r.text);
  const n = Number(m[1]);
  assert.ok(n > audio.length && n < audio.length + 2048, `${n} bytes for a ${audio.length}-byte file`);
  assert.equal(r.model, MODEL);
});

test('audio.speech.create returns the audio bytes', async () => {
  const input = 'Hello from the OpenAI SDK';
  for (const [format, type] of [['wav', 'audio/wav'], [undefined, 'audio/mpeg']]) {
    const res = await client.audio.speech.create({
      model: MODEL, voice: 'alloy', input, ...(format ? { response_format: format } : {}),
    });
    assert.equal(res.headers.get('content-type'), type);
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(bytes.toString(), `FAKE-AUDIO ${format || 'mp3'} voice=alloy\n${input}`);
  }
});

test('unknown model: NotFoundError (404) with llama-swap\'s message', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages }),
    (err) => {
      assert.ok(err instanceof NotFoundError, `${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      assert.match(err.message, /model 'no-such-model' not found/);
      return true;
    });
});

if (API_KEY !== 'none') {
  test('a wrong API key: AuthenticationError (401)', async () => {
    const bad = new OpenAI({ baseURL: BASE_URL + '/v1', apiKey: API_KEY + '-wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (err) => {
      assert.ok(err instanceof AuthenticationError, `${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 401);
      return true;
    });
  });
}

test('a swap while a stream is running: the stream completes, then B answers', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL_A, messages, stream: true, stream_options: { include_usage: true },
  });
  let firstChunk;
  const gotFirst = new Promise((resolve) => { firstChunk = resolve; });
  const aDone = (async () => {
    let text = '';
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      firstChunk();
      assert.equal(chunk.model, MODEL_A);
      for (const c of chunk.choices) {
        if (c.delta?.content) text += c.delta.content;
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    firstChunk();
    return { text, finish, usage, at: performance.now() };
  })();
  await gotFirst; // A is running and streaming: now ask for B, which needs A stopped
  const bAsked = performance.now();
  const b = await client.chat.completions.create({ model: MODEL_B, messages });
  const bAt = performance.now();
  const a = await aDone;
  assert.equal(a.text, A_TEXT.repeat(A_TOKENS), 'stream A cut short');
  assert.equal(a.finish, 'stop');
  assert.equal(a.usage?.completion_tokens, A_TOKENS);
  assert.equal(b.model, MODEL_B);
  assert.equal(b.choices[0].message.content, joined(B_TEXT, B_TOKENS));
  assert.ok(bAsked < a.at, 'A\'s stream had ended before B was asked for: no overlap');
  assert.ok(a.at <= bAt, 'B answered before A\'s stream had ended');
  // B replaced A.
  const headers = API_KEY !== 'none' ? { Authorization: `Bearer ${API_KEY}` } : {};
  const running = await (await fetch(BASE_URL + '/running', { headers })).json();
  const models = running.running.map((r) => r.model);
  assert.ok(models.includes(MODEL_B), JSON.stringify(running));
  assert.ok(!models.includes(MODEL_A), JSON.stringify(running));
});

// Never hang the test run.
setTimeout(() => {
  console.log('Bail out! timed out after 80 s');
  process.exit(1);
}, 80000).unref();

console.log(`1..${cases.length}`);
let failed = 0;
for (const [i, [name, fn]] of cases.entries()) {
  const t0 = performance.now();
  try {
    await fn();
    console.log(`ok ${i + 1} - ${name}`);
  } catch (err) {
    failed++;
    console.log(`not ok ${i + 1} - ${name}`);
    for (const line of String(err?.stack || err).split('\n')) console.log(`# ${line}`);
  }
  console.log(`# ${name} took ${((performance.now() - t0) / 1000).toFixed(2)} s`);
}
process.exit(failed ? 1 : 0);

import { generateText, streamText, tool, Output, embed, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';

const openai = createOpenAI({ baseURL: (process.env.RECORDER ?? 'http://127.0.0.1:19013') + '/v1', apiKey: 'sk-anything-not-a-real-key' });
const h = (name) => ({ 'x-corpus-case': name });

const weather = tool({
  description: 'Get the weather in a location',
  inputSchema: z.object({
    location: z.string().describe('The city'),
    unit: z.enum(['c', 'f']).nullable().describe('Temperature unit, or null'),
    type: z.string().optional().describe('Kind of forecast'),
  }),
  execute: async ({ location }) => ({ location, temperature: 21 }),
});

const Recipe = z.object({
  name: z.string(),
  servings: z.number().int().nullable(),
  ingredients: z.array(z.object({ item: z.string(), amount: z.string().nullable() })),
});

async function attempt(name, fn) {
  try { await fn(); } catch (e) { console.log(name, 'client error (expected):', e.name, String(e.message).slice(0, 120)); }
}

await attempt('responses-generate-text-tool', () => generateText({
  model: openai('gpt-4.1-mini'), tools: { weather }, headers: h('responses-generate-text-tool'),
  prompt: 'What is the weather in San Francisco?', stopWhen: stepCountIs(3) }));
await attempt('responses-stream-text-tool', async () => {
  const r = streamText({ model: openai('gpt-4.1-mini'), tools: { weather }, headers: h('responses-stream-text-tool'),
    system: 'You are a weather bot.', prompt: 'Weather in Berlin?' });
  for await (const _ of r.fullStream) {}
});
await attempt('responses-output-object-zod', () => generateText({
  model: openai('gpt-4.1-mini'), headers: h('responses-output-object-zod'),
  output: Output.object({ schema: Recipe }), prompt: 'Generate a lasagna recipe.' }));
await attempt('chat-generate-text-tool', () => generateText({
  model: openai.chat('gpt-4o-mini'), tools: { weather }, headers: h('chat-generate-text-tool'),
  prompt: 'What is the weather in Madrid?', maxOutputTokens: 300, temperature: 0.3 }));
await attempt('chat-stream-text-output-object', async () => {
  const r = streamText({ model: openai.chat('gpt-4o-mini'), headers: h('chat-stream-text-output-object'),
    output: Output.object({ schema: Recipe }), prompt: 'Generate a pancake recipe.' });
  for await (const _ of r.fullStream) {}
});
await attempt('embeddings', () => embed({ model: openai.embedding('text-embedding-3-small'),
  value: 'sunny day at the beach', headers: h('embeddings') }));
console.log('ok');

// The official npm "openai" package against a running sworn proxy: a
// non-streaming and a streaming chat completion. Usage: node npm-openai.mjs URL
import OpenAI from "openai";

const baseURL = process.argv[2] + "/v1";
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });

const { data, response } = await client.chat.completions
  .create({ model: "echo", messages: [{ role: "user", content: "Hello from npm" }] })
  .withResponse();
if (data.choices[0].message.content !== "echo: Hello from npm") {
  throw new Error("unexpected answer: " + JSON.stringify(data));
}
const receipt = response.headers.get("sworn-receipt");
if (!receipt || receipt.length !== 32) throw new Error("no Sworn-Receipt header");

const stream = await client.chat.completions.create({
  model: "echo", stream: true, messages: [{ role: "user", content: "stream from npm" }],
});
let text = "";
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
if (text !== "echo: stream from npm") throw new Error("unexpected stream: " + text);
console.log("npm openai: whole and streamed chat completions through sworn; receipt " + receipt);

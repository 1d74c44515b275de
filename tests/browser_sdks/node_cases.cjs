// The Node SDKs, unmodified, replaying calls against `ledger serve`, for tests/test_sdk_browser.py.
//
//   node node_cases.cjs amplitude|segment LEDGER_URL KEY '[["device-A", null], ["device-G", "user-John"], ...]'
//   node node_cases.cjs amplitude-groups LEDGER_URL KEY '[["device-G", "user-John"]]'
//
// Sends one "view" track call per [device ID, user ID or null] row, each delivered before the next
// so the ledger receives them in order, and prints the insert_ids / messageIds as a JSON array.
// Exits 1 when the SDK reports an event as not delivered.
"use strict";
const { randomUUID } = require("node:crypto");

async function withAmplitude(ledger, key, rows) {
  const { createInstance } = require("@amplitude/analytics-node");
  const client = createInstance();
  await client.init(key, { serverUrl: `${ledger}/2/httpapi`, flushIntervalMillis: 50, logLevel: 0 }).promise;
  const sent = [];
  for (const [device_id, user_id] of rows) {
    const insert_id = randomUUID();
    const result = await client.track("view", undefined, { device_id, user_id: user_id ?? undefined, insert_id }).promise;
    if (result.code !== 200) throw new Error(`amplitude: ${result.code} ${result.message}`);
    sent.push(insert_id);
  }
  return sent;
}

async function withSegment(ledger, key, rows) {
  const { Analytics } = require("@segment/analytics-node");
  const analytics = new Analytics({ writeKey: key, host: ledger, maxEventsInBatch: 1, flushInterval: 50, maxRetries: 0 });
  const sent = [];
  for (const [anonymousId, userId] of rows) {
    const messageId = randomUUID();
    const message = userId ? { anonymousId, userId, messageId, event: "view" } : { anonymousId, messageId, event: "view" };
    await new Promise((resolve, reject) =>
      analytics.track(message, (error) => (error ? reject(new Error(`segment: ${error.reason ?? error}`)) : resolve())));
    sent.push(messageId);
  }
  await analytics.closeAndFlush();
  return sent;
}

// setGroup (an identify call carrying groups) puts the row's person in "org id" 1234 and 5678, then
// groupIdentify sets 1234's properties; prints [] once both are delivered.
async function groupsWithAmplitude(ledger, key, [[device_id, user_id]]) {
  const { createInstance, Identify } = require("@amplitude/analytics-node");
  const client = createInstance();
  await client.init(key, { serverUrl: `${ledger}/2/httpapi`, flushIntervalMillis: 50, logLevel: 0 }).promise;
  const options = { device_id, user_id };
  const properties = new Identify().set("plan", "Enterprise").add("seats", 10);
  for (const result of [await client.setGroup("org id", ["1234", "5678"], options).promise,
                        await client.groupIdentify("org id", "1234", properties, options).promise]) {
    if (result.code !== 200) throw new Error(`amplitude: ${result.code} ${result.message}`);
  }
  return [];
}

const [sdk, ledger, key, rows] = process.argv.slice(2);
const send = { segment: withSegment, "amplitude-groups": groupsWithAmplitude }[sdk] ?? withAmplitude;
send(ledger, key, JSON.parse(rows)).then(
  (sent) => console.log(JSON.stringify(sent)),
  (error) => { console.error(String(error)); process.exit(1); },
);

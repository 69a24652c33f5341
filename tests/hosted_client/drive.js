// Drives Runway's official hosted-models client (npm @runwayml/hosted-models, unchanged) against our server, as a
// user's program would. tests/serve/test_hosted_client.py starts the server and checks the one JSON line this
// prints. Usage: node drive.js <denied|cold|wake> <url> <format.data> <image file>; the token comes in the
// HOSTED_TOKEN environment variable (never on the command line, where process listings would show it).
'use strict';
const fs = require('fs');
const { HostedModel } = require('@runwayml/hosted-models');
const errors = require('@runwayml/hosted-models/build/HTTPErrors');

const [mode, url, dataHeader, imagePath] = process.argv.slice(2);
const token = process.env.HOSTED_TOKEN;
// What the original clients did: the catalog's format.data, then base64 of the file.
const image = dataHeader + fs.readFileSync(imagePath).toString('base64');
const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;

// The package is compiled to ES5, where subclasses of Error lose their own name and prototype: tell the
// client's errors apart by the message each of its classes sets.
function errorName(err) {
  const found = Object.entries(errors).find(([, Class]) => {
    try {
      return new Class('').message === err.message;
    } catch (_) {
      return false;
    }
  });
  return found ? found[0] : `${err.name}: ${err.message}`;
}

async function refusal(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return errorName(err);
  }
}

async function denied() {
  // No token, and a wrong one: both are refused with the client's PermissionDeniedError (a 401).
  const anonymous = new HostedModel({ url });
  const wrong = new HostedModel({ url, token: 'wrong-' + token });
  return {
    noToken: await refusal(anonymous.info()),
    wrongToken: await refusal(wrong.query({ image })),
    wrongTokenAwake: await refusal(wrong.isAwake()),
  };
}

async function cold() {
  // The first request to a sleeping model: query() waits for it to wake, then answers.
  const start = process.hrtime.bigint();
  const model = new HostedModel({ url, token });
  const output = await model.query({ image });
  return { coldQueryMs: ms(start), output };
}

async function wake() {
  const model = new HostedModel({ url, token }); // the constructor's GET /v1/ starts waking it
  const awakeAtFirst = await model.isAwake();
  const start = process.hrtime.bigint();
  await model.waitUntilAwake(200);
  const waitUntilAwakeMs = ms(start);
  const awakeAfter = await model.isAwake();
  const info = await model.info();
  const warmQueryMs = [];
  let output = null;
  for (let i = 0; i < 5; i++) {
    const t = process.hrtime.bigint();
    output = await model.query({ image });
    warmQueryMs.push(ms(t));
  }
  return { awakeAtFirst, waitUntilAwakeMs, awakeAfter, info, warmQueryMs, output };
}

const modes = { denied, cold, wake };
modes[mode]()
  .then((result) => console.log(JSON.stringify(result)))
  .catch((err) => {
    console.error(errorName(err));
    process.exit(1);
  });

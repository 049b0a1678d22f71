// What the node tests share: the pass/fail tally, psql as the stack's
// superuser, the mock's admin interface for one account, and the run.
import { execFileSync } from 'node:child_process';

const failures = [];

export const check = (name, ok, detail = '') => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? ': ' + JSON.stringify(detail) : ''}`);
  if (!ok) failures.push(name);
};

export const psql = (sql) => execFileSync('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' }).trim();

/** The mock's admin interface for `account`: (method, path, body) → the reply's text. */
export const adminOf = (account) => async (method, path, body) => {
  const sep = path.includes('?') ? '&' : '?';
  const reply = await fetch(`${process.env.MOCK_URL}${path}${sep}account=${account}`, {
    method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body),
  });
  return reply.text();
};

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `main`, an exception a failure of its own; exits 1 on failures. */
export async function run(name, main) {
  try {
    await main();
  } catch (error) {
    check(`the ${name} test ran`, false, String(error));
  }
  console.log(`${name}: ${failures.length ? 'FAILED: ' + failures.join(', ') : 'all passed'}`);
  process.exit(failures.length ? 1 : 0);
}

// node-postgres against a synced Stripe customers table: INSERT … RETURNING,
// the error fields of an API refusal, and the rollback WARNING as a notice.
import pg from 'pg';
import { adminOf, check, psql, run, sleep } from './common.mjs';

const NAME = 'app_node', ACCOUNT = 'sk_test_app_node';
const MOCK = process.env.MOCK_URL;
const admin = adminOf(ACCOUNT);
const mock = async (method, path, body) => JSON.parse(await admin(method, path, body));

async function main() {
  psql(`DROP SCHEMA IF EXISTS ${NAME} CASCADE; DROP SERVER IF EXISTS ${NAME} CASCADE`);
  await mock('POST', '/_admin/reset');
  psql(`CREATE SERVER ${NAME} FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', base_url '${MOCK}', poll_interval '500ms');
        CREATE USER MAPPING FOR PUBLIC SERVER ${NAME} OPTIONS (api_key '${ACCOUNT}');
        CREATE SCHEMA ${NAME};
        IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER ${NAME} INTO ${NAME};`);
  const client = new pg.Client({ database: process.env.PGDATABASE });
  await client.connect();
  const notices = [];
  client.on('notice', (notice) => notices.push(notice));

  const { rows } = await client.query(`INSERT INTO ${NAME}.customers (email, name) VALUES ($1, $2) RETURNING id`, ['ada@example.com', 'Ada']);
  check('INSERT … RETURNING gives the API\'s id', rows[0].id.startsWith('cus_'), rows);
  check('the API has it', (await mock('GET', `/_admin/stripe/customers/${rows[0].id}`)).name === 'Ada');

  try {
    await client.query(`INSERT INTO ${NAME}.customers (email) VALUES ('not-an-email')`);
    check('an API refusal raises', false);
  } catch (error) {
    check('an API refusal carries code 23514, the API\'s message and a DETAIL',
      error.code === '23514' && /email/i.test(error.message) && /HTTP 400/.test(error.detail), error);
  }

  await client.query('BEGIN');
  await client.query(`INSERT INTO ${NAME}.customers (email) VALUES ('kept@example.com')`);
  await client.query('ROLLBACK');
  check('the rollback WARNING arrives as a notice',
    notices.some((n) => n.severity === 'WARNING' && /not rolled back/.test(n.message)), notices.map((n) => n.message));
  // The sync brings what the rollback left upstream; then the table and the API agree.
  let kept = 0;
  for (let i = 0; i < 100 && !kept; i++) {
    kept = Number((await client.query(`SELECT count(*) AS n FROM ${NAME}.customers WHERE email = 'kept@example.com'`)).rows[0].n);
    if (!kept) await sleep(50);
  }
  check('the sync brings the record the rollback left upstream', kept === 1);
  const upstream = (await mock('GET', '/_admin/stripe/customers')).data.filter((c) => !c.deleted).map((c) => c.id).sort();
  const local = (await client.query(`SELECT id FROM ${NAME}.customers WHERE NOT deleted ORDER BY id`)).rows.map((r) => r.id);
  check('the table and the API hold the same customers', JSON.stringify(local) === JSON.stringify(upstream), { local, upstream });
  await client.end();
  psql(`DROP SCHEMA ${NAME} CASCADE; DROP SERVER ${NAME} CASCADE`);
}

await run('node-postgres', main);

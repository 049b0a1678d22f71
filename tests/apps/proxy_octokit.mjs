// Octokit (@octokit/rest, GitHub's official JavaScript SDK) through
// sequin-proxy, unchanged but for its baseUrl: an issue created, updated
// and closed, a comment created and deleted; each change is in its table
// as soon as the SDK call returns (the sync is paused).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Octokit } from '@octokit/rest';
import { adminOf, check, psql, run, sleep } from './common.mjs';

const NAME = 'app_proxy_github', ACCOUNT = 'ghp_app_proxy_github', TOKEN = 'tok_octokit_6a4e', ROLE = 'app_proxy_octokit';
const LOGIN = 'sequin_proxy_login';
const MOCK = process.env.MOCK_URL;
const admin = adminOf(ACCOUNT);

async function startProxy() {
  psql(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${LOGIN}') THEN CREATE ROLE ${LOGIN} LOGIN; END IF; END $$;
        GRANT EXECUTE ON FUNCTION sequin.proxy_request(text, text, text, text, jsonb, bytea) TO ${LOGIN}`);
  const portFile = join(mkdtempSync(join(tmpdir(), 'sequin-proxy-')), 'url');
  const proxy = spawn(new URL('../../target/release/sequin-proxy', import.meta.url).pathname,
    ['--listen', '127.0.0.1:0', '--port-file', portFile,
     '--conninfo', `host=${process.env.PGHOST} port=${process.env.PGPORT} user=${LOGIN}`], { stdio: 'inherit' });
  for (let i = 0; i < 200 && !existsSync(portFile); i++) await sleep(50);
  return { proxy, url: readFileSync(portFile, 'utf8').trim() };
}

async function main() {
  psql(`DROP SCHEMA IF EXISTS ${NAME} CASCADE; DROP SERVER IF EXISTS ${NAME} CASCADE;
        DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN CREATE ROLE ${ROLE}; END IF; END $$`);
  await admin('POST', '/_admin/reset');
  await admin('POST', '/_admin/github/repos', { full_name: 'octo/hello' });
  await admin('POST', '/_admin/github/repos/octo/hello/seed', { issues: 3, pull_requests: 0, step_s: 1 });
  psql(`CREATE SERVER ${NAME} FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'github', base_url '${MOCK}', repository 'octo/hello', poll_interval '1h');
        CREATE USER MAPPING FOR CURRENT_USER SERVER ${NAME} OPTIONS (api_key '${ACCOUNT}');
        CREATE USER MAPPING FOR ${ROLE} SERVER ${NAME} OPTIONS (api_key '${ACCOUNT}', proxy_token '${TOKEN}');
        CREATE SCHEMA ${NAME};
        IMPORT FOREIGN SCHEMA github LIMIT TO (issues, issue_comments) FROM SERVER ${NAME} INTO ${NAME};
        GRANT USAGE ON FOREIGN SERVER ${NAME} TO ${ROLE};
        GRANT USAGE ON SCHEMA ${NAME} TO ${ROLE};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${NAME} TO ${ROLE};`);
  for (let i = 0; i < 300; i++) {
    if (psql(`SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = '${NAME}'`) === 't') break;
    await sleep(100);
  }
  psql(`SELECT sequin.pause('${NAME}')`);

  const { proxy, url } = await startProxy();
  try {
    // The application's code, as it would be against api.github.com.
    const octokit = new Octokit({ auth: TOKEN, baseUrl: `${url}/${process.env.PGDATABASE}/${NAME}` });
    const owner = 'octo', repo = 'hello';

    const { data: issue } = await octokit.rest.issues.create({ owner, repo, title: 'Through the proxy', labels: [] });
    check('octokit: issues.create returns the API\'s issue', issue.number > 3 && issue.title === 'Through the proxy', issue.number);
    check('octokit: the table has the issue when create returns',
      psql(`SELECT title || ' ' || state FROM ${NAME}.issues WHERE number = ${issue.number}`) === 'Through the proxy open');
    await octokit.rest.issues.update({ owner, repo, issue_number: issue.number, title: 'Renamed' });
    check('octokit: the table has the update when update returns',
      psql(`SELECT title FROM ${NAME}.issues WHERE number = ${issue.number}`) === 'Renamed');
    const { data: comment } = await octokit.rest.issues.createComment({ owner, repo, issue_number: issue.number, body: 'Hi' });
    check('octokit: the comment is in its table when createComment returns',
      psql(`SELECT body FROM ${NAME}.issue_comments WHERE id = '${comment.id}'`) === 'Hi');
    const deleted = await octokit.rest.issues.deleteComment({ owner, repo, comment_id: comment.id });
    check('octokit: the comment is marked deleted when deleteComment returns (204)',
      deleted.status === 204 && psql(`SELECT deleted FROM ${NAME}.issue_comments WHERE id = '${comment.id}'`) === 't', deleted.status);
    await octokit.rest.issues.update({ owner, repo, issue_number: issue.number, state: 'closed', state_reason: 'completed' });
    check('octokit: the table shows the issue closed when update returns',
      psql(`SELECT state FROM ${NAME}.issues WHERE number = ${issue.number}`) === 'closed');
    try {
      await octokit.rest.issues.create({ owner, repo, title: '' });
      check('octokit: an API refusal throws', false);
    } catch (error) {
      check('octokit: an API refusal reaches the SDK as the API\'s own error (422)', error.status === 422, error.status);
    }
  } finally {
    proxy.kill('SIGTERM');
    await new Promise((resolve) => proxy.on('exit', resolve));
  }
  check('sequin-proxy ends cleanly on SIGTERM', proxy.exitCode === 0, proxy.exitCode);
  psql(`DROP SCHEMA IF EXISTS ${NAME} CASCADE; DROP SERVER IF EXISTS ${NAME} CASCADE`);
}

await run('proxy octokit', main);

// Stripe Sync Engine (@supabase/stripe-sync-engine, now maintained by
// Stripe) backfilling one account's customers, for make bench's side by
// side: `node backfill.cjs <database URL> <API key> <mock URL>`; prints
// {"synced": n, "seconds": s}. CommonJS: only its CommonJS build finds its
// migrations. Its migrations want a database of their own (schema
// "stripe"); its Stripe client is the `stripe` library pointed at the mock
// with the library's own host, port and protocol options.
const { StripeSync, runMigrations } = require('@supabase/stripe-sync-engine');
const Stripe = require('stripe');

async function main() {
  const [databaseUrl, key, mockUrl] = process.argv.slice(2);
  const mock = new URL(mockUrl);
  await runMigrations({ databaseUrl, schema: 'stripe' });
  const sync = new StripeSync({
    poolConfig: { connectionString: databaseUrl },
    stripeSecretKey: key,
    stripeWebhookSecret: 'whsec_bench',
    stripeApiVersion: '2020-08-27',
  });
  sync.stripe = new Stripe(key, {
    apiVersion: '2020-08-27',
    host: mock.hostname,
    port: Number(mock.port),
    protocol: mock.protocol.replace(':', ''),
    maxNetworkRetries: 0,
  });
  const started = process.hrtime.bigint();
  const result = await sync.syncBackfill({ object: 'customer' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await sync.postgresClient.pool.end();
  console.log(JSON.stringify({ synced: result.customers.synced, seconds }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

"""psycopg 3 against a synced Stripe customers table: INSERT … RETURNING,
error classes by SQLSTATE with the API's message, the rollback WARNING
through a notice handler, and UPDATEs that name read-only columns."""
import psycopg
from psycopg import errors

from common import DSN, check, drop, mock, run, stripe_schema, table_matches_api

NAME, ACCOUNT = "app_psycopg", "sk_test_app_psycopg"


def main():
    stripe_schema(NAME, ACCOUNT, seed=3)
    with psycopg.connect(DSN, autocommit=True) as conn:
        notices = []
        conn.add_notice_handler(lambda diag: notices.append((diag.severity_nonlocalized, diag.message_primary)))

        row = conn.execute(f"INSERT INTO {NAME}.customers (email, name) VALUES (%s, %s) RETURNING id, created",
                           ("ada@example.com", "Ada")).fetchone()
        check("INSERT … RETURNING gives the API's id and created", row[0].startswith("cus_") and row[1] is not None, row)
        ada = row[0]
        check("the API has it", mock("GET", f"/_admin/stripe/customers/{ada}", ACCOUNT)["email"] == "ada@example.com")

        try:
            conn.execute(f"INSERT INTO {NAME}.customers (email) VALUES ('not-an-email')")
            check("an API refusal raises", False)
        except errors.CheckViolation as e:
            check("an API refusal is CheckViolation (23514) with the API's message",
                  e.sqlstate == "23514" and "email" in e.diag.message_primary.lower(), e.diag.message_primary)

        # An ORM-style UPDATE naming every column: unchanged read-only ones are not sent.
        conn.execute(f"UPDATE {NAME}.customers SET name = 'Ada L.', id = id, created = created, deleted = deleted, "
                     f"raw = raw, upstream_updated_at = upstream_updated_at WHERE id = %s", (ada,))
        check("an UPDATE naming read-only columns with their values works",
              mock("GET", f"/_admin/stripe/customers/{ada}", ACCOUNT)["name"] == "Ada L.")
        try:
            conn.execute(f"UPDATE {NAME}.customers SET created = now() WHERE id = %s", (ada,))
            check("changing a read-only column raises", False)
        except errors.GeneratedAlways as e:
            check("changing a read-only column is GeneratedAlways (428C9)", e.sqlstate == "428C9", e)

        # A rollback cannot undo what the API did: the WARNING reaches the handler.
        with conn.transaction(force_rollback=True):
            conn.execute(f"INSERT INTO {NAME}.customers (email) VALUES ('kept@example.com')")
        warned = [m for s, m in notices if s == "WARNING" and "not rolled back" in m]
        check("the rollback WARNING reaches a notice handler", len(warned) == 1, notices)
        # The sync brings the record the rollback left upstream.
        for _ in range(100):
            if conn.execute(f"SELECT count(*) FROM {NAME}.customers WHERE email = 'kept@example.com'").fetchone()[0]:
                break
            conn.execute("SELECT pg_sleep(0.05)")
        conn.execute(f"DELETE FROM {NAME}.customers WHERE email = 'kept@example.com'")
    table_matches_api(NAME, ACCOUNT)
    drop(NAME)


if __name__ == "__main__":
    run(main, "psycopg")

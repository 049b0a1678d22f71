"""Django 5.2 against a synced Stripe customers table, with the README's
unmanaged model (djangoapp/models.py): create, save() of every field,
update_or_create, filter, delete, and bulk_create within the per-statement
limit with the API's ids returned."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import django  # noqa: E402
from django.conf import settings  # noqa: E402

from common import check, drop, mock, run, stripe_schema, table_matches_api  # noqa: E402

NAME, ACCOUNT = "app_django", "sk_test_app_django"

settings.configure(
    INSTALLED_APPS=["djangoapp"],
    USE_TZ=True,
    DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ["PGHOST"], "PORT": os.environ["PGPORT"],
        "USER": os.environ["PGUSER"], "NAME": os.environ["PGDATABASE"],
        # The imported schema first: the model's db_table is "customers".
        "OPTIONS": {"options": f"-c search_path={NAME},public"},
    }},
)
django.setup()
from django.db import IntegrityError, connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.db.utils import Error  # noqa: E402

from djangoapp.models import Customer  # noqa: E402


def api_customer(id):
    return mock("GET", f"/_admin/stripe/customers/{id}", ACCOUNT)


def main():
    stripe_schema(NAME, ACCOUNT, seed=2)
    with CaptureQueriesContext(connection) as queries:
        ada = Customer.objects.create(email="ada@example.com", name="Ada")
    statements = [q["sql"] for q in queries.captured_queries]
    check("create() gets the API's id back from one INSERT … RETURNING",
          ada.pk is not None and ada.pk.startswith("cus_") and len(statements) == 1 and "RETURNING" in statements[0],
          (ada.pk, statements))
    check("the API has it", api_customer(ada.pk)["name"] == "Ada")

    # save() sends every field, read-only ones with the values Django read.
    ada = Customer.objects.get(pk=ada.pk)
    ada.name = "Ada Lovelace"
    ada.save()
    check("save() of a loaded object works", api_customer(ada.pk)["name"] == "Ada Lovelace")

    obj, created = Customer.objects.update_or_create(email="ada@example.com", defaults={"balance": 500})
    check("update_or_create() updates", not created and api_customer(obj.pk)["balance"] == 500, (created, obj.pk))
    obj, created = Customer.objects.update_or_create(email="grace@example.com", defaults={"name": "Grace"})
    check("update_or_create() creates", created and obj.pk.startswith("cus_") and api_customer(obj.pk)["name"] == "Grace")

    check("filter() reads the table", Customer.objects.filter(name__startswith="Ada").count() == 1)

    try:
        with transaction.atomic():
            Customer.objects.create(email="not-an-email")
        check("an API refusal raises", False)
    except IntegrityError as e:
        check("an API refusal is an IntegrityError (23514)", e.__cause__.sqlstate == "23514", e)

    # bulk_create: past the per-statement limit (Stripe: 100) it is refused
    # before any request; in batches of 100 every object gets its id.
    before = len(mock("GET", "/_admin/stripe/customers", ACCOUNT)["data"])
    try:
        with transaction.atomic():
            Customer.objects.bulk_create([Customer(email=f"bulk{i}@example.com") for i in range(150)])
        check("bulk_create of 150 in one statement is refused", False)
    except Error as e:
        check("bulk_create of 150 in one statement is refused (54000), nothing sent",
              e.__cause__.sqlstate == "54000" and len(mock("GET", "/_admin/stripe/customers", ACCOUNT)["data"]) == before, e)
    made = Customer.objects.bulk_create([Customer(email=f"bulk{i}@example.com") for i in range(150)], batch_size=100)
    check("bulk_create(batch_size=100) returns the API's ids",
          len(made) == 150 and all(c.pk and c.pk.startswith("cus_") for c in made) and len({c.pk for c in made}) == 150)
    check("the API has all 150", api_customer(made[149].pk)["email"] == "bulk149@example.com")

    deleted, _ = Customer.objects.filter(email__startswith="bulk1").delete()
    check("delete() of a filtered set goes to the API", deleted == 61, deleted)
    Customer.objects.get(pk=ada.pk).delete()
    live = {c["id"] for c in mock("GET", "/_admin/stripe/customers", ACCOUNT)["data"] if not c.get("deleted")}
    check("delete() of one object goes to the API", ada.pk not in live)
    table_matches_api(NAME, ACCOUNT)
    drop(NAME)


if __name__ == "__main__":
    run(main, "Django")

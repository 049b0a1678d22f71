"""SQLAlchemy 2.0 against a synced Stripe customers table: reflection sees
the columns the API assigns (a server default), the README's two recipes
(a reflected table mapped with its primary key; a declared class with
FetchedValue on id) get the new id back from one INSERT, ORM update and
delete go to the API, and an API refusal inside commit is an IntegrityError
that leaves nothing behind."""
import os

from sqlalchemy import FetchedValue, MetaData, Table, Text, create_engine, event, exc, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common import check, drop, mock, run, stripe_schema, table_matches_api

NAME, ACCOUNT = "app_sqlalchemy", "sk_test_app_sqlalchemy"


def main():
    stripe_schema(NAME, ACCOUNT, seed=2)
    env = os.environ
    engine = create_engine(f"postgresql+psycopg://{env['PGUSER']}@{env['PGHOST']}:{env['PGPORT']}/{env['PGDATABASE']}")
    inserts = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: inserts.append(statement) if statement.startswith("INSERT") else None)

    # Reflection: the API-assigned columns carry a server default.
    reflected = Table("customers", MetaData(), autoload_with=engine, schema=NAME)
    assigned = {c.name for c in reflected.columns if c.server_default is not None}
    check("reflection sees a server default on id, created and the standard fields",
          {"id", "created", "deleted", "raw"} <= assigned and "email" not in assigned, assigned)

    # Recipe 1: the reflected table, mapped with its primary key.
    class Base(DeclarativeBase):
        pass

    customers = Table("customers", Base.metadata, autoload_with=engine, schema=NAME)

    class Customer(Base):
        __table__ = customers
        __mapper_args__ = {"primary_key": [customers.c.id]}

    with Session(engine) as session:
        ada = Customer(email="ada@example.com", name="Ada")
        session.add(ada)
        session.commit()
        check("a reflected, mapped table gets the API's id from one INSERT",
              ada.id is not None and ada.id.startswith("cus_") and len(inserts) == 1 and "RETURNING" in inserts[0],
              (ada.id, inserts))
        check("the API has it", mock("GET", f"/_admin/stripe/customers/{ada.id}", ACCOUNT)["name"] == "Ada")
        ada.name = "Ada Lovelace"
        session.commit()
        check("an ORM update goes to the API",
              mock("GET", f"/_admin/stripe/customers/{ada.id}", ACCOUNT)["name"] == "Ada Lovelace")
        session.add(Customer(email="not-an-email"))
        try:
            session.commit()
            check("an API refusal fails the commit", False)
        except exc.IntegrityError as e:
            session.rollback()
            check("an API refusal inside commit is an IntegrityError (23514)", e.orig.sqlstate == "23514", e.orig)
        doomed = session.scalars(select(Customer).where(Customer.email == "ada@example.com")).one()
        doomed_id = doomed.id
        session.delete(doomed)
        session.commit()
        live = {c["id"] for c in mock("GET", "/_admin/stripe/customers", ACCOUNT)["data"] if not c.get("deleted")}
        check("an ORM delete goes to the API", doomed_id not in live, live)

    # Recipe 2: a declared class, with FetchedValue on id.
    class Declared(DeclarativeBase):
        pass

    class DeclaredCustomer(Declared):
        __tablename__ = "customers"
        __table_args__ = {"schema": NAME}
        id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=FetchedValue())
        email: Mapped[str | None] = mapped_column(Text)
        name: Mapped[str | None] = mapped_column(Text)

    inserts.clear()
    with Session(engine) as session:
        grace = DeclaredCustomer(email="grace@example.com", name="Grace")
        session.add(grace)
        session.commit()
        check("a declared class with FetchedValue gets the API's id from one INSERT",
              grace.id is not None and grace.id.startswith("cus_") and len(inserts) == 1, (grace.id, inserts))
    engine.dispose()
    table_matches_api(NAME, ACCOUNT)
    drop(NAME)


if __name__ == "__main__":
    run(main, "SQLAlchemy")

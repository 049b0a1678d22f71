"""The providers' official Python SDKs through sequin-proxy, unchanged but
for their base URL: Stripe's `stripe` (api_base) and `simple-salesforce`
(its instance, over TLS: it only speaks https). Each creates, updates and
deletes a record (and Stripe an RPC-like call whose reply nests synced
objects); the table shows each change as soon as the SDK call returns,
with the sync paused, so the change came with the reply."""
import os
import subprocess
import tempfile

import simple_salesforce
import stripe

from common import MOCK, Proxy, check, drop, mock, psql, run, wait_for

STRIPE, STRIPE_ACCOUNT, STRIPE_TOKEN = "app_proxy_stripe", "sk_test_app_proxy_stripe", "tok_stripe_sdk_8d02"
SF, SF_ACCOUNT, SF_TOKEN = "app_proxy_sf", "sk_test_app_proxy_sf", "tok_salesforce_sdk_31f7"
ROLE = "app_proxy_sdk"


def role():
    psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN CREATE ROLE {ROLE}; END IF; END $$")


def grant(name):
    psql(f"""GRANT USAGE ON FOREIGN SERVER {name} TO {ROLE};
             GRANT USAGE ON SCHEMA {name} TO {ROLE};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {name} TO {ROLE};""")


def synced(name, timeout=30):
    wait_for(lambda: psql(f"SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = '{name}'") == "t",
             timeout)
    psql(f"SELECT sequin.pause('{name}')")


def one(sql):
    return psql(sql)


def stripe_journey(proxy):
    drop(STRIPE)
    mock("POST", "/_admin/reset", STRIPE_ACCOUNT)
    mock("POST", "/_admin/stripe/subscriptions/seed?count=1", STRIPE_ACCOUNT)
    psql(f"""CREATE SERVER {STRIPE} FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'stripe', base_url '{MOCK}', poll_interval '1h');
             CREATE USER MAPPING FOR CURRENT_USER SERVER {STRIPE} OPTIONS (api_key '{STRIPE_ACCOUNT}');
             CREATE USER MAPPING FOR {ROLE} SERVER {STRIPE} OPTIONS (api_key '{STRIPE_ACCOUNT}', proxy_token '{STRIPE_TOKEN}');
             CREATE SCHEMA {STRIPE};
             IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, prices, subscriptions, invoices) FROM SERVER {STRIPE} INTO {STRIPE};""")
    grant(STRIPE)
    synced(STRIPE)
    price = one(f"SELECT id FROM {STRIPE}.prices LIMIT 1")

    # The application's code, as it would be against api.stripe.com.
    stripe.api_key = STRIPE_TOKEN
    stripe.api_base = proxy.base(STRIPE)
    stripe.max_network_retries = 0

    customer = stripe.Customer.create(email="sdk@example.com", name="Sdk", metadata={"plan": "pro"})
    check("stripe: Customer.create returns the API's customer",
          customer.id.startswith("cus_") and customer.email == "sdk@example.com", customer.id)
    check("stripe: the table has the customer when create returns",
          one(f"SELECT name || ' ' || (metadata->>'plan') FROM {STRIPE}.customers WHERE id = '{customer.id}'") == "Sdk pro")
    stripe.Customer.modify(customer.id, name="Sdk Renamed")
    check("stripe: the table has the update when modify returns",
          one(f"SELECT name FROM {STRIPE}.customers WHERE id = '{customer.id}'") == "Sdk Renamed")

    # RPC-like: a subscription whose reply nests its first invoice.
    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": price, "quantity": 2}],
                                              expand=["latest_invoice"])
    invoice = subscription.latest_invoice
    check("stripe: Subscription.create with its latest_invoice expanded",
          subscription.id.startswith("sub_") and invoice.id.startswith("in_"), subscription.id)
    check("stripe: the subscription and the invoice nested in its reply are in their tables when create returns",
          one(f"""SELECT s.customer = '{customer.id}' AND i.subscription = s.id AND s.latest_invoice = i.id
                    FROM {STRIPE}.subscriptions s JOIN {STRIPE}.invoices i ON i.id = '{invoice.id}'
                   WHERE s.id = '{subscription.id}'""") == "t")

    try:
        stripe.Customer.create(email="not-an-email")
        check("stripe: an API refusal raises in the SDK", False)
    except stripe.InvalidRequestError as error:
        check("stripe: an API refusal reaches the SDK as the API's own error",
              error.http_status == 400 and "email" in str(error.user_message or error).lower(), error)

    deleted = stripe.Customer.delete(customer.id)
    check("stripe: the row is marked deleted when delete returns",
          deleted.deleted and one(f"SELECT deleted FROM {STRIPE}.customers WHERE id = '{customer.id}'") == "t")
    drop(STRIPE)


def salesforce_journey(proxy_url_for):
    drop(SF)
    mock("POST", "/_admin/reset", SF_ACCOUNT)
    mock("POST", "/_admin/salesforce/Contact/seed?count=3", SF_ACCOUNT)
    grant_body = {"client_id": "app-proxy-cid", "client_secret": "app-proxy-secret"}
    refresh = mock("POST", "/_admin/oauth/grants", SF_ACCOUNT, grant_body)["refresh_token"]
    oauth = f"client_id 'app-proxy-cid', client_secret 'app-proxy-secret', refresh_token '{refresh}'"
    psql(f"""CREATE SERVER {SF} FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'salesforce', base_url '{MOCK}', token_url '{MOCK}/services/oauth2/token', poll_interval '1h');
             CREATE USER MAPPING FOR CURRENT_USER SERVER {SF} OPTIONS ({oauth});
             CREATE USER MAPPING FOR {ROLE} SERVER {SF} OPTIONS ({oauth}, proxy_token '{SF_TOKEN}');
             CREATE SCHEMA {SF};
             IMPORT FOREIGN SCHEMA salesforce LIMIT TO (contacts) FROM SERVER {SF} INTO {SF};""")
    grant(SF)
    synced(SF)

    proxy, cert = proxy_url_for()
    # requests trusts the proxy's certificate the way it takes any CA.
    os.environ["REQUESTS_CA_BUNDLE"] = cert
    # The application's code: an instance and a session id, as after a login.
    host_and_path = proxy.base(SF).split("://", 1)[1]
    sf = simple_salesforce.Salesforce(instance=host_and_path, session_id=SF_TOKEN, version="60.0")

    created = sf.Contact.create({"LastName": "Lovelace", "Email": "ada@example.com"})
    check("simple-salesforce: Contact.create", created.get("success") and created["id"].startswith("003"), created)
    contact = created["id"]
    check("simple-salesforce: the table has the contact when create returns",
          one(f"SELECT last_name || ' ' || email FROM {SF}.contacts WHERE id = '{contact}'") == "Lovelace ada@example.com")
    status = sf.Contact.update(contact, {"Title": "Countess"})
    check("simple-salesforce: the table has the update when update returns",
          status == 204 and one(f"SELECT title FROM {SF}.contacts WHERE id = '{contact}'") == "Countess", status)
    queried = sf.query(f"SELECT Id, LastName FROM Contact WHERE Id IN ('{contact}')")
    check("simple-salesforce: a SOQL query passes through", queried["totalSize"] == 1, queried.get("totalSize"))
    try:
        sf.Contact.create({"Email": "nameless@example.com"})
        check("simple-salesforce: an API refusal raises", False)
    except simple_salesforce.exceptions.SalesforceMalformedRequest as error:
        check("simple-salesforce: an API refusal reaches the SDK as the API's own error",
              error.status == 400 and "REQUIRED_FIELD_MISSING" in str(error.content), error.content)
    status = sf.Contact.delete(contact)
    check("simple-salesforce: the row is marked deleted when delete returns",
          status == 204 and one(f"SELECT deleted FROM {SF}.contacts WHERE id = '{contact}'") == "t", status)
    drop(SF)


def self_signed_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def main():
    role()
    proxy = Proxy()
    try:
        stripe_journey(proxy)
    finally:
        proxy.stop()
    directory = tempfile.mkdtemp(prefix="sequin-proxy-tls-")
    cert, key = self_signed_certificate(directory)
    tls = []

    def tls_proxy():
        tls.append(Proxy("--tls-cert", cert, "--tls-key", key))
        check("with --tls-cert the proxy serves https", tls[0].url.startswith("https://"), tls[0].url)
        return tls[0], cert

    try:
        salesforce_journey(tls_proxy)
    finally:
        for proxy in tls:
            proxy.stop()


if __name__ == "__main__":
    run(main, "proxy SDKs")

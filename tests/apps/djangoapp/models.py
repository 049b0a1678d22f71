"""The README's recipe: an unmanaged model of a synced table whose key the
API assigns. Django reads back after INSERT the fields marked
`db_returning` (as it does an AutoField's), so an object made without an id
is sent with NULL there, which sequin_fdw does not send to the API, and
gets the API's id from RETURNING: with create(), save() and bulk_create().
(A key declared with `db_default` gets it from create() and save() too, but
Django 5.2's bulk_create does not read such a key back.)"""
from django.db import models


class ApiAssignedKey(models.TextField):
    db_returning = True


class Customer(models.Model):
    id = ApiAssignedKey(primary_key=True, default=None)
    email = models.TextField(null=True)
    name = models.TextField(null=True)
    balance = models.BigIntegerField(null=True)
    metadata = models.JSONField(null=True)
    created = models.DateTimeField(null=True)
    deleted = models.BooleanField(null=True)

    class Meta:
        managed = False
        db_table = "customers"

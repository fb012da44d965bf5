"""Edit-conflict detection for admin forms of models with a `version` column.

The form carries the version the editor loaded. On save, inside the admin's own
transaction, the row is locked (SELECT ... FOR UPDATE) and its version compared: if
anyone saved it meanwhile, or a sale took stock from it, the editor gets the form back
with an error instead of silently overwriting the other change. The lock is held until
the save commits, so the check and the write cannot be separated by another writer.

Kept rather than swapped for django-concurrency: the `version` column is also the
services' optimistic lock (core/versioning.py), and docs/what-we-use.md lists why that
library does not fit it.
"""

from django import forms
from django.contrib import admin
from django.db.models import F


class VersionedAdminForm(forms.ModelForm):
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.fields["loaded_version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            current = (
                type(self.instance)
                .objects.select_for_update()
                .values_list("version", flat=True)
                .get(pk=self.instance.pk)
            )
            if cleaned.get("loaded_version") != current:
                raise forms.ValidationError(
                    "Somebody else changed this %(model)s while you were editing it (or a sale took stock). "
                    "Your changes were not saved: open it again to see the current values, then redo your edit.",
                    code="edit_conflict",
                    params={"model": self.instance._meta.verbose_name},
                )
        return cleaned


class VersionedModelAdmin(admin.ModelAdmin):
    form = VersionedAdminForm

    def save_model(self, request, obj, form, change):
        if change:
            obj.version = F("version") + 1
        super().save_model(request, obj, form, change)
        if change:
            obj.refresh_from_db(fields=["version"])

"""The lock library's one table: the high-water mark of fencing tokens (locks/fencing.py)."""

from django.db import models


class FencingToken(models.Model):
    """The highest fencing token a write has carried (or an epoch reserved) for one resource."""

    resource = models.CharField(max_length=255, unique=True)
    highest_token = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "fencing token"

    def __str__(self):
        return f"{self.resource}: {self.highest_token}"

"""DATABASE_REPLICA_URL (config/settings.py): unset, the shop has one database and nothing of
the read replica is installed; set, the alias, the router and the pinning middleware.

Each case imports the settings module in a fresh interpreter with its own environment (no
connection is made), so the result does not depend on how this run was started.
"""

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import json
import config.settings as s
print(json.dumps({
    "databases": sorted(s.DATABASES),
    "routers": getattr(s, "DATABASE_ROUTERS", []),
    "middleware": s.MIDDLEWARE,
    "replica": s.DATABASES.get("replica"),
    "replicas": getattr(s, "REPLICA_DATABASES", None),
    "pin": getattr(s, "MULTIDB_PINNING_SECONDS", None),
}, default=str))
"""


def settings_with(**env):
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_REPLICA_URL"} | env
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_without_a_replica_url_nothing_changes():
    s = settings_with()
    assert s["databases"] == ["default"]
    assert s["routers"] == []
    assert not [m for m in s["middleware"] if "db_router" in m or "multidb" in m]
    assert s["replicas"] is None
    assert s["pin"] is None


def test_a_replica_url_adds_the_alias_router_and_middleware():
    url = "mysql://reader@db-replica.example:3307/flashshop"
    s = settings_with(DATABASE_REPLICA_URL=url, MULTIDB_PINNING_SECONDS="20")
    assert s["databases"] == ["default", "replica"]
    assert s["replicas"] == ["replica"]
    assert s["routers"] == ["core.db_router.CatalogueReplicaRouter"]
    auth = s["middleware"].index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert s["middleware"][auth + 1] == "core.db_router.ReplicaPinningMiddleware"
    replica = s["replica"]
    assert (replica["HOST"], replica["PORT"], replica["NAME"]) == ("db-replica.example", 3307, "flashshop")
    assert replica["TEST"] == {"MIRROR": "default"}
    assert replica["OPTIONS"]["isolation_level"] == "read committed"
    assert replica["OPTIONS"]["connect_timeout"] == 1
    assert replica["CONN_HEALTH_CHECKS"] is True
    assert s["pin"] == 20

from agent.web.access import Role
from tests.web.conftest import Web


async def test_signed_in_admin_reaches_health(web: Web) -> None:
    await web.sign_in_as(Role.ADMIN)
    r = await web.client.get("/healthz")
    assert r.status == 200
    r = await web.client.get("/login")
    assert r.status == 200

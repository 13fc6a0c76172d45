"""Which addresses a webhook URL may reach (how a delivery connects only to a checked one, with
the URL's Host and TLS server name, is proven end to end in tests/integration/test_transport.py)."""

import ipaddress

import pytest

from payhook import net

FORBIDDEN = ["127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1",
             "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1",
             "240.0.0.1", "255.255.255.255", "192.0.2.1", "::", "::1", "fe80::1", "fc00::1",
             "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:8.8.8.8", "::7f00:1",
             "2002:7f00:1::1", "2001:db8::1"]
PUBLIC = ["8.8.8.8", "93.184.215.14", "100.63.255.255", "100.128.0.1", "2606:4700::1111"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_non_public_addresses_are_forbidden(address):
    assert net.is_forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert not net.is_forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/hook", "http://LOCALHOST./hook",
    "http://shop.localhost/hook", "http://[::1]:9000/", "http://[::ffff:10.0.0.1]/",
    "http://2130706433/", "http://0x7f.1/", "http://0/", "https://169.254.169.254/latest",
])
async def test_urls_reaching_non_public_addresses_are_refused(url):
    with pytest.raises(net.ForbiddenAddress):
        await net.public_addresses(url)


async def test_every_resolved_address_is_checked(monkeypatch):
    async def resolve(host, port=None):
        return [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.7")]

    monkeypatch.setattr(net, "resolve", resolve)
    with pytest.raises(net.ForbiddenAddress, match="10.0.0.7"):
        await net.public_addresses("https://merchant.example/hook")


async def test_public_literals_pass_and_unknown_names_do_not_resolve():
    assert await net.public_addresses("https://93.184.215.14/hook") == [
        ipaddress.ip_address("93.184.215.14")]
    with pytest.raises(net.Unresolvable):
        await net.public_addresses("https://no-such-host.invalid/hook")

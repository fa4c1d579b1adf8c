"""The console in a real browser: Debian's chromium (headless, driven by chromedriver through Selenium) against a
real `cardsuite scms serve` over TLS 1.3. The browser trusts exactly the server's key (its SPKI pinned, the
certificate checked against the system's CA here first). Signs in as each role, visits the main pages after a
remote-style post-issuance, sees a forbidden page as 403, and keeps screenshots in build/reports/console/."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cardsuite.project import Project
from cardsuite.scms.ads import PostIssuance
from cardsuite.scms.console import auth
from cardsuite.scms.system import System
from cardsuite.sim.inprocess import SimulatorTransport
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.scms.conftest import card_identity
from tests.scms.test_remote import ISO_APPLET, server  # noqa: F401 - the module's serve process, as a fixture

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")  # Debian's; Playwright's own cannot be fetched here
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
PASSWORD = "browser test password"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402 - after the skip
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


def _spki_pin(certificate: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list trusts."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@dataclass
class Browser:
    driver: webdriver.Chrome
    url: str  # the serve process's


@pytest.fixture
def browser(server: str, scms_folder: System, tmp_path: Path) -> Iterator[Browser]:  # noqa: F811
    """Chromium on the module's serve process."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--disable-gpu", "--window-size=1280,900", f"--user-data-dir={tmp_path}",
                     f"--ignore-certificate-errors-spki-list={_spki_pin(scms_folder.server_cert)}"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # chromium's sandbox refuses to run as root
    service = webdriver.ChromeService(str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    yield Browser(driver, server)
    driver.quit()


@pytest.fixture
def shots(project: Project, record_property: pytest.RecordProperty) -> Path:
    folder = project.root / "build" / "reports" / "console"
    folder.mkdir(parents=True, exist_ok=True)
    record_property("screenshots", str(folder))
    return folder


def _status(driver: webdriver.Chrome) -> int:
    """The HTTP status of the page shown (Navigation Timing 2's responseStatus)."""
    return int(driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus"))


def _sign_in(driver: webdriver.Chrome, url: str, name: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/console/")
    assert driver.current_url.startswith(f"{url}/console/signin")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
    WebDriverWait(driver, 20).until(expected_conditions.url_to_be(f"{url}/console/statistics"))  # the redirect


def test_the_console_in_chromium(browser: Browser, scms_folder: System, project: Project, card: SimulatorTransport,
                                 shots: Path) -> None:
    url, driver = browser.url, browser.driver
    started = time.time()
    suffix = str(time.monotonic_ns())
    names = {role: f"{role}-{suffix}" for role in auth.RIGHTS}
    db = scms_folder.database()
    for role, name in names.items():
        auth.add_user(db, name, role, PASSWORD)
    cin = card_identity(card)
    db.upsert_card(cin, "SECURED")
    request = db.new_request("kiosk-browser", "install", "isoapplet")
    PostIssuance(scms_folder, db, project, request).run(card)
    recorded = [(str(number), name, outcome) for number, name, outcome, _ in db.steps(request)]
    db.close()

    _sign_in(driver, url, names["operator"])
    assert len(driver.find_elements(By.CSS_SELECTOR, "figure.chart")) == 5
    driver.save_screenshot(str(shots / "statistics.png"))
    driver.get(f"{url}/console/cards")
    driver.find_element(By.LINK_TEXT, cin).click()
    assert driver.find_element(By.TAG_NAME, "h1").text == f"Card {cin}"
    assert ISO_APPLET.hex().upper() in driver.page_source  # its contents, from the inventory
    driver.save_screenshot(str(shots / "card.png"))
    driver.get(f"{url}/console/cards")
    driver.save_screenshot(str(shots / "cards.png"))
    driver.get(f"{url}/console/requests/{request}")
    shown = [tuple(td.text for td in row.find_elements(By.TAG_NAME, "td")[:3])
             for row in driver.find_elements(By.CSS_SELECTOR, "#steps tr")[1:]]
    assert shown == recorded and any(name == "mutual authentication" for _, name, _ in shown), shown
    driver.save_screenshot(str(shots / "request.png"))
    driver.get(f"{url}/console/requests")
    driver.save_screenshot(str(shots / "requests.png"))
    driver.get(f"{url}/console/applications")
    assert "isoapplet" in driver.page_source
    driver.save_screenshot(str(shots / "applications.png"))
    driver.get(f"{url}/console/audit")  # an operator's role has no right to the audit log
    assert _status(driver) == 403 and driver.find_element(By.TAG_NAME, "h1").text == "403 Forbidden"
    driver.save_screenshot(str(shots / "forbidden.png"))

    _sign_in(driver, url, names["auditor"])
    driver.get(f"{url}/console/audit?operation=console.signin")
    rows = driver.find_elements(By.CSS_SELECTOR, "table tr")[1:]
    assert rows and all(row.find_elements(By.TAG_NAME, "td")[3].text == "console.signin" for row in rows)
    driver.save_screenshot(str(shots / "audit.png"))

    _sign_in(driver, url, names["administrator"])
    driver.get(f"{url}/console/users")
    assert names["auditor"] in driver.page_source
    driver.save_screenshot(str(shots / "users.png"))
    driver.get(f"{url}/console/cards")
    assert _status(driver) == 403
    taken = ("statistics", "card", "cards", "request", "requests", "applications", "forbidden", "audit", "users")
    assert all((shots / f"{name}.png").stat().st_mtime >= started for name in taken)

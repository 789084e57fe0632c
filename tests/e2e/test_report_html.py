"""The monitor's report.html in a real browser: render tests/fixtures/monitor/report.json with
`render_report`, open the page in Debian's headless Chromium (no npm, no driver: --dump-dom for
the DOM after the page's script ran, --screenshot for the pixels) and check that every chart was
drawn with the right number of marks, and that the screenshot is a real picture of them.

Chromium is a test dependency of scripts/install-deps.sh. The page must need no network: the
browser runs with background networking off and the page is opened from a file:// URL.
"""

import html.parser
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.join(_HERE, "..", "..")
RENDER_REPORT = os.path.abspath(os.environ.get("RENDER_REPORT_BIN")
                                or os.path.join(_ROOT, "build", "render_report"))
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
FIXTURE = os.path.abspath(os.path.join(_ROOT, "tests", "fixtures", "monitor", "report.json"))

CHROMIUM_TIMEOUT = 90
WIDTH, HEIGHT = 1280, 2400
# The page's bar colours (report_template.html, COLOR.ref and COLOR.cur).
REFERENCE_RGB = (0x9A, 0xA5, 0xB1)
CURRENT_RGB = (0x25, 0x63, 0xEB)


def chromium(user_data_dir, *args):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--user-data-dir=" + user_data_dir,
           "--virtual-time-budget=5000"] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT,
                          stdin=subprocess.DEVNULL)


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children, self.text = [], []

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def find_all(self, tag=None, cls=None, **attrs):
        return [n for n in self.walk()
                if (tag is None or n.tag == tag) and (cls is None or cls in n.classes())
                and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def all_text(self):
        return "".join(t if isinstance(t, str) else t.all_text() for t in self.text)


class DomParser(html.parser.HTMLParser):
    """A tree of the serialized DOM (HTML void elements have no end tag; SVG elements do)."""
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        self.cur.text.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        self.cur.text.append(node)

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text.append(data)


def read_png(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, color_type, _, _, interlace = ihdr
    if depth != 8 or color_type not in (2, 6) or interlace != 0:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color_type}, "
                         f"interlace {interlace}")
    bpp = 3 if color_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if filt == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif filt == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif filt == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif filt == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif filt != 0:
            raise ValueError(f"bad PNG filter {filt} in row {y}")
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


class ReportHtmlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(CHROMIUM):
            raise AssertionError(f"{CHROMIUM} not found: run scripts/install-deps.sh (it installs "
                                 "Debian's chromium, a test dependency)")
        cls.dir = os.path.realpath(tempfile.mkdtemp(prefix="ferry-e2e-report-"))
        with open(FIXTURE) as f:
            cls.report = json.load(f)
        cls.page = os.path.join(cls.dir, "report.html")
        r = subprocess.run([RENDER_REPORT, FIXTURE, cls.page], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r
        r = chromium(os.path.join(cls.dir, "profile-dom"), "--dump-dom", "file://" + cls.page)
        assert r.returncode == 0, r.stderr[-2000:]
        cls.dom_text = r.stdout
        parser = DomParser()
        parser.feed(r.stdout)
        cls.dom = parser.root
        cls.png = os.path.join(cls.dir, "report.png")
        r = chromium(os.path.join(cls.dir, "profile-shot"), "--screenshot=" + cls.png,
                     f"--window-size={WIDTH},{HEIGHT}", "file://" + cls.page)
        assert r.returncode == 0, r.stderr[-2000:]

    @classmethod
    def tearDownClass(cls):
        # Keep the page and the screenshot for a look when asked to.
        if os.environ.get("FERRY_KEEP_REPORT"):
            print(f"report kept in {cls.dir}")
        else:
            shutil.rmtree(cls.dir, True)

    def test_the_script_ran(self):
        html_el = self.dom.find_all("html")[0]
        self.assertEqual(html_el.attrs.get("data-rendered"), "true")

    def test_one_distribution_chart_per_feature_with_a_bar_pair_per_bin(self):
        charts = self.dom.find_all("svg", data_chart="distribution")
        self.assertEqual([c.attrs["data-feature"] for c in charts],
                         ["charges", "tenure", "plan"])
        expected = {"charges": 8, "tenure": 6, "plan": 4}  # plan: 3 + the unseen "enterprise"
        for f in self.report["features"]:
            if f["kind"] == "numeric":
                self.assertEqual(len(f["reference"]["counts"]), expected[f["name"]])
        for chart in charts:
            name = chart.attrs["data-feature"]
            self.assertEqual(len(chart.find_all("rect", cls="bar-reference")), expected[name], name)
            self.assertEqual(len(chart.find_all("rect", cls="bar-current")), expected[name], name)
            self.assertEqual(chart.find_all("title")[0].all_text(),
                             f"{name}: reference vs current distribution")
        # Numeric bins are labelled by their edges; the unseen category is marked new.
        labels = [t.all_text() for t in charts[0].find_all("text")]
        self.assertIn("0–15", labels)
        self.assertIn("105–120", labels)
        plan = [t.all_text() for t in charts[2].find_all("text", cls="new-category")]
        self.assertEqual(plan, ["enterprise (new)"])
        # Bar heights are shares: the tallest current bar of charges is 1500/7000.
        heights = [float(r.attrs["height"]) for r in charts[0].find_all("rect", cls="bar-current")]
        self.assertEqual(heights.index(max(heights)), 4)
        self.assertGreater(max(heights), 0)

    def test_drift_over_time_has_one_line_per_feature(self):
        charts = self.dom.find_all("svg", data_chart="drift-over-time")
        self.assertEqual(len(charts), 1)
        lines = charts[0].find_all("path", cls="drift-line")
        self.assertEqual([l.attrs["data-feature"] for l in lines], ["charges", "tenure", "plan"])
        # charges: 7 days drawn as one M and six L; plan's last day is null: 6 points.
        self.assertEqual(lines[0].attrs["d"].count("L"), 6)
        self.assertEqual(lines[2].attrs["d"].count("L"), 5)
        self.assertTrue(charts[0].find_all("title")[0].all_text())

    def test_metric_chart_has_a_point_per_day_and_the_trend(self):
        charts = self.dom.find_all("svg", data_chart="metric-over-time")
        self.assertEqual(len(charts), 1)
        self.assertEqual(len(charts[0].find_all("circle", cls="metric-point")), 7)
        trend = charts[0].find_all("line", cls="trend-line")
        self.assertEqual(len(trend), 1)
        # A negative slope: the line ends lower on the page (a larger y) than it starts.
        self.assertGreater(float(trend[0].attrs["y2"]), float(trend[0].attrs["y1"]))
        segments = self.dom.find_all("svg", data_chart="segment-metric-over-time")
        self.assertEqual([s.attrs["data-segment"] for s in segments], ["plan=pro"])
        self.assertEqual(len(segments[0].find_all("circle", cls="metric-point")), 7)
        self.assertEqual(len(segments[0].find_all("line", cls="trend-line")), 1)
        text = self.dom.find_all("section", id="performance")[0].all_text()
        self.assertIn("−0.0113 accuracy per day (95% CI −0.0131 to −0.0097)", text)

    def test_header_alerts_and_quality(self):
        badge = self.dom.find_all(cls="status-badge")
        self.assertEqual([b.all_text() for b in badge], ["alerted"])
        header = self.dom.find_all("header")[0].all_text()
        self.assertIn("Monitor report · churn", header)
        self.assertIn("churn:7 (6,900 rows), churn:8 (100 rows)", header)
        self.assertIn("5,200 (74.3%)", header)
        rows = self.dom.find_all("tr", cls="alert-row")
        self.assertEqual([[td.all_text() for td in r.find_all("td")] for r in rows],
                         [["psi > 0.2", "charges", "–", "0.31",
                           "charges: psi 0.31 > 0.2 (reference: training profile of churn:7)"]])
        quality = self.dom.find_all("section", id="quality")[0].all_text()
        self.assertIn("Missing columns: tickets", quality)
        self.assertIn("New columns: coupon", quality)
        self.assertIn("2 of 3 passed", quality)
        # Null statistics print a dash: plan has no KS (categorical) and charges no chi2.
        plan = self.dom.find_all("section", data_feature="plan")[0].all_text()
        self.assertIn("Unseen categoriesenterprise", plan)
        self.assertIn("χ² p-value2.4e-88", plan)

    def test_the_screenshot_shows_the_charts(self):
        width, height, bpp, rows = read_png(self.png)
        self.assertEqual((width, height), (WIDTH, HEIGHT))
        colours = {}
        for row in rows[::2]:
            for x in range(0, width * bpp, bpp * 2):
                px = row[x:x + 3]
                colours[px] = colours.get(px, 0) + 1
        self.assertGreater(len(colours), 200, "the screenshot is (nearly) blank")
        # Both bar colours fill solid areas: at least 2000 sampled pixels (1/4 of all) each.
        self.assertGreater(colours.get(bytes(REFERENCE_RGB), 0), 2000)
        self.assertGreater(colours.get(bytes(CURRENT_RGB), 0), 2000)


def render_and_dump(test, report):
    """The DOM tree of `report`'s page after its script ran, rendered in a temp dir of `test`."""
    tmp = os.path.realpath(tempfile.mkdtemp(prefix="ferry-e2e-report-"))
    test.addCleanup(shutil.rmtree, tmp, True)
    src = os.path.join(tmp, "report.json")
    with open(src, "w") as f:
        json.dump(report, f)
    page = os.path.join(tmp, "report.html")
    r = subprocess.run([RENDER_REPORT, src, page], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    test.assertEqual(r.returncode, 0, r)
    r = chromium(os.path.join(tmp, "profile"), "--dump-dom", "file://" + page)
    test.assertEqual(r.returncode, 0, r.stderr[-2000:])
    parser = DomParser()
    parser.feed(r.stdout)
    test.assertEqual(parser.root.find_all("html")[0].attrs.get("data-rendered"), "true")
    return parser.root


class ReportHtmlNullsTest(unittest.TestCase):
    """A passed report without labels, with null statistics: dashes, no metric chart."""

    def test_nulls_print_a_dash_and_no_labels_says_so(self):
        with open(FIXTURE) as f:
            report = json.load(f)
        report["status"] = "passed"
        report["alerts"] = []
        report["performance"] = None
        report["labelled_rows"] = 0
        report["features"][1]["drift"] = {k: None for k in report["features"][1]["drift"]}
        report["features"][1]["daily"] = []
        dom = render_and_dump(self, report)
        self.assertEqual([b.all_text() for b in dom.find_all(cls="status-badge")], ["passed"])
        self.assertEqual(dom.find_all("tr", cls="alert-row"), [])
        self.assertIn("No alerts", dom.find_all("section", id="alerts")[0].all_text())
        self.assertEqual([p.all_text() for p in dom.find_all(cls="no-labels")],
                         ["no labels joined"])
        self.assertEqual(dom.find_all("svg", data_chart="metric-over-time"), [])
        tenure = dom.find_all("section", data_feature="tenure")[0].all_text()
        for label in ("PSI", "KS", "KS p-value", "Wasserstein", "Jensen–Shannon"):
            self.assertIn(label + "–", tenure)
        lines = dom.find_all("path", cls="drift-line")
        self.assertEqual([l.attrs["data-feature"] for l in lines], ["charges", "plan"])


class ReportHtmlMarkupTest(unittest.TestCase):
    """A feature name that is markup is shown as text, never run as a script."""

    def test_markup_in_a_name_is_text(self):
        with open(FIXTURE) as f:
            report = json.load(f)
        evil = "</script><script>document.title='owned'</script><img src=x onerror=alert(1)>"
        report["features"][2]["name"] = evil
        report["alerts"][0]["message"] = evil
        dom = render_and_dump(self, report)
        self.assertEqual(dom.find_all("img"), [])
        self.assertEqual(dom.find_all("title")[0].all_text(), "ferry monitor · churn")
        charts = dom.find_all("svg", data_chart="distribution")
        self.assertEqual(charts[2].attrs["data-feature"], evil)
        self.assertEqual(len(charts[2].find_all("rect", cls="bar-current")), 4)
        self.assertIn(evil, dom.find_all("tr", cls="alert-row")[0].all_text())


if __name__ == "__main__":
    unittest.main()

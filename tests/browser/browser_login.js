'use strict';
// A real browser is the user: headless Debian Chromium, driven by playwright-core,
// logs in through a running Sekisho gateway. Started by browser_login.sh, which sets
// up the CA, the accounts, the demo upstream and the gateway, and passes:
//   SK_GW_URL   https://127.0.0.1:PORT of the gateway
//   SK_TMP      scratch directory: users/ID.p12(+pass) from lib.sh, secrets/ID.pw,
//               and the screenshots this script keeps
//   SK_USER     account for the password scenarios; SK_TOTP_USER enrols TOTP
//   SK_UP_LOG   the demo upstream's request log (one line per request it got)
//   SK_CHROMIUM the browser binary (default /usr/bin/chromium)
// Prints "ok N - what" per scenario; the first failed check prints
// "FAIL: browser_login: ..." (plus a screenshot of the page at that moment) and
// exits 1.

const { chromium } = require('playwright-core');
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const BASE = mustEnv('SK_GW_URL');
const TMP = mustEnv('SK_TMP');
const USER = mustEnv('SK_USER');
const TOTP_USER = mustEnv('SK_TOTP_USER');
const UP_LOG = mustEnv('SK_UP_LOG');
const CHROMIUM = process.env.SK_CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 15000; // every wait of this script is bounded by this
const COOKIE = '__Host-sekisho';

function mustEnv(name) {
    const v = process.env[name];
    if (!v) {
        console.error(`FAIL: browser_login: environment variable ${name} is not set`);
        process.exit(2);
    }
    return v;
}

class CheckFailed extends Error {}

function check(cond, what) {
    if (!cond)
        throw new CheckFailed(what);
}

function eq(actual, expected, what) {
    check(actual === expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

const readTrim = (f) => fs.readFileSync(f, 'utf8').replace(/\s+$/, '');
const password = (id) => fs.readFileSync(path.join(TMP, 'secrets', `${id}.pw`), 'utf8');

// TOTP code of the base32 KEY at unix time T, computed by oathtool (a second,
// independent RFC 6238 implementation). The key goes over stdin, not argv.
function totpAt(key, t) {
    return execFileSync('oathtool', ['--totp', '-b', '-N', `@${t}`, '-'], {
        input: key + '\n', timeout: WAIT_MS, encoding: 'utf8',
    }).trim();
}

async function newContext(browser, user, opts = {}) {
    return browser.newContext({
        // The user's PKCS#12 bundle, as lib.sh's sk_make_ca wrote it. Playwright
        // presents it for this origin only.
        clientCertificates: [{
            origin: BASE,
            pfxPath: path.join(TMP, 'users', `${user}.p12`),
            passphrase: readTrim(path.join(TMP, 'users', `${user}.p12pass`)),
        }],
        // Only for the SERVER certificate: it is issued by the throw-away test CA,
        // which Chromium (and Playwright's client-certificate relay) do not trust.
        // The client certificate is still required and verified by the gateway,
        // which is what these scenarios are about.
        ignoreHTTPSErrors: true,
        locale: opts.locale || 'en-US',
        javaScriptEnabled: opts.js !== false,
        viewport: { width: 800, height: 760 },
    });
}

async function openPage(ctx) {
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.setDefaultNavigationTimeout(WAIT_MS);
    return page;
}

// Run FN(ctx, page) in a fresh browser context (own cookies, own certificate).
// When FN fails, the page it was on is kept as failure-N.png before the context
// closes.
let failureCount = 0;
async function withContext(browser, user, opts, fn) {
    const ctx = await newContext(browser, user, opts);
    let page;
    try {
        page = await openPage(ctx);
        return await fn(ctx, page);
    } catch (e) {
        if (page !== undefined) {
            const f = path.join(TMP, `failure-${++failureCount}.png`);
            try {
                await page.screenshot({ path: f, fullPage: true, timeout: 5000 });
                console.error(`failure screenshot: ${f} (at ${page.url()})`);
                console.error(`page text: ${((await page.textContent('body', { timeout: 5000 })) || '').slice(0, 600)}`);
            } catch (e2) {
                console.error(`(no failure screenshot: ${e2.message})`);
            }
        }
        throw e;
    } finally {
        await ctx.close();
    }
}

// Click the submit button of the page's form and wait for the page it leads to.
async function submit(page, button = 'button[type=submit]') {
    const [resp] = await Promise.all([
        page.waitForNavigation({ timeout: WAIT_MS }),
        page.click(button),
    ]);
    check(resp !== null, 'form submission produced no response');
    return resp;
}

const upstreamRequests = () => fs.readFileSync(UP_LOG, 'utf8').split('\n')
    .filter((l) => l.startsWith('demo-upstream: ')).length;
const pathOf = (page) => new URL(page.url()).pathname;
const text = async (page, sel) => ((await page.textContent(sel)) || '').trim();

async function sessionCookie(ctx) {
    return (await ctx.cookies(BASE)).find((c) => c.name === COOKIE && c.value !== '');
}

async function shot(page, name) {
    const f = path.join(TMP, name);
    await page.screenshot({ path: f, fullPage: true, timeout: WAIT_MS });
    console.log(`screenshot: ${f}`);
    return f;
}

// Portal page of the demo upstream, reached through the gateway: it greets the
// user named by X-Sekisho-User, which only the gateway can set.
async function expectPortal(page, user, target, what) {
    eq(page.url(), BASE + target, `${what}: URL of the portal`);
    eq(await text(page, 'h1'), 'Demo admin portal', `${what}: portal heading`);
    eq(await text(page, 'p b'), user, `${what}: portal greets the certificate's user`);
}

async function expectLoginPage(page, user, what) {
    eq(pathOf(page), '/.sekisho/login', `${what}: path`);
    eq(await text(page, '.cert strong'), user, `${what}: certificate user shown`);
    eq(await page.inputValue('#id'), user, `${what}: ID pre-filled from the certificate`);
}

// Full browser login: open TARGET, be sent to the login page, sign in, land on TARGET.
async function browserLogin(page, user, target, opts = {}) {
    const first = await page.goto(BASE + target);
    eq(first.status(), 200, `GET ${target} (after the redirect)`);
    await expectLoginPage(page, user, `login page for ${target}`);
    eq(new URL(page.url()).searchParams.get('return'), target, 'return path in the login URL');
    eq(await page.inputValue('input[name=return]'), target, 'return path in the form');
    eq(await page.locator('#totp').count(), opts.totp ? 1 : 0, 'one-time code field on the login page');
    if (opts.shot)
        await shot(page, opts.shot);
    await page.fill('#password', password(user));
    if (opts.totp)
        await page.fill('#totp', opts.totp);
    const resp = await submit(page);
    eq(resp.status(), 200, `status of ${target} after login`);
    await expectPortal(page, user, target, 'after login');
}

async function expectCookieAttributes(ctx) {
    const c = await sessionCookie(ctx);
    check(c !== undefined, `no ${COOKIE} cookie after login`);
    eq(c.secure, true, 'cookie Secure');
    eq(c.httpOnly, true, 'cookie HttpOnly');
    eq(c.sameSite, 'Strict', 'cookie SameSite');
    eq(c.path, '/', 'cookie Path');
    return c;
}

// ---- scenarios -------------------------------------------------------------------

async function scenarioLogin(browser, js) {
    await withContext(browser, USER, { js }, async (ctx, page) => {
        const target = js ? '/?from=browser&step=1' : '/?from=browser&javascript=off';
        await browserLogin(page, USER, target, { shot: js ? 'login-en.png' : undefined });
        await expectCookieAttributes(ctx);
        if (js) {
            const visible = await page.evaluate(() => document.cookie);
            check(!visible.includes(COOKIE), `page script can read ${COOKIE}: ${visible}`);
            await shot(page, 'portal.png');
        } else {
            // Prove scripts really were off in this context, not just asked to be.
            await page.goto('data:text/html,<title>before</title><script>document.title="ran"</script>');
            eq(await page.title(), 'before', 'inline script ran although JavaScript is disabled');
        }
    });
}

// Chromium's own WebSocket client through the gateway: the upgrade carries the
// session cookie (same site), the demo upstream's /ws echoes every frame.
async function scenarioWebSocket(browser) {
    await withContext(browser, USER, { js: true }, async (ctx, page) => {
        await browserLogin(page, USER, '/?from=browser&step=ws');
        const echoed = await page.evaluate((waitMs) => new Promise((resolve, reject) => {
            const ws = new WebSocket(`wss://${location.host}/ws`);
            const timer = setTimeout(() => reject(new Error('no echo within the time limit')), waitMs);
            ws.onopen = () => ws.send('hello from chromium, 関所');
            ws.onmessage = (e) => { clearTimeout(timer); ws.close(); resolve(e.data); };
            ws.onerror = () => { clearTimeout(timer); reject(new Error('WebSocket error')); };
        }), WAIT_MS - 2000);
        eq(echoed, 'hello from chromium, 関所', 'WebSocket echo through the gateway');
    });
    // Without a session the upgrade is refused: the socket never opens.
    await withContext(browser, USER, { js: true }, async (ctx, page) => {
        await page.goto(BASE + '/.sekisho/login', { waitUntil: 'load', timeout: WAIT_MS });
        const outcome = await page.evaluate((waitMs) => new Promise((resolve) => {
            const ws = new WebSocket(`wss://${location.host}/ws`);
            const timer = setTimeout(() => resolve('timeout'), waitMs);
            ws.onopen = () => { clearTimeout(timer); ws.close(); resolve('open'); };
            ws.onerror = () => { clearTimeout(timer); resolve('refused'); };
        }), WAIT_MS - 2000);
        eq(outcome, 'refused', 'WebSocket without a session');
    });
}

async function scenarioJapanese(browser) {
    await withContext(browser, USER, { locale: 'ja-JP' }, async (ctx, page) => {
        const resp = await page.goto(BASE + '/');
        eq(resp.status(), 200, 'login page status (ja)');
        await expectLoginPage(page, USER, 'Japanese login page');
        eq(await page.getAttribute('html', 'lang'), 'ja', 'html lang');
        eq(await text(page, 'h1'), 'サインイン', 'Japanese heading');
        eq(await text(page, 'label[for=password]'), 'パスワード', 'Japanese password label');
        eq(await text(page, 'button[type=submit]'), 'サインイン', 'Japanese button');
        await shot(page, 'login-ja.png');
        // A failure message in Japanese too.
        await page.fill('#password', 'Wrong-Passw0rd');
        const r = await submit(page);
        eq(r.status(), 401, 'wrong password status (ja)');
        eq(await text(page, '.msg.err'), 'IDまたはパスワードが正しくありません。', 'Japanese error message');
        eq(await sessionCookie(ctx), undefined, 'session cookie after a wrong password (ja)');
    });
}

async function scenarioWrongPassword(browser) {
    await withContext(browser, USER, {}, async (ctx, page) => {
        await page.goto(BASE + '/?step=wrong');
        await expectLoginPage(page, USER, 'login page before a wrong password');
        await page.fill('#password', password(USER) + 'x');
        const r = await submit(page);
        eq(r.status(), 401, 'status after a wrong password');
        eq(pathOf(page), '/.sekisho/login', 'page after a wrong password');
        eq(await text(page, '.msg.err'), 'The ID or password is incorrect.', 'wrong-password message');
        eq(await sessionCookie(ctx), undefined, 'session cookie after a wrong password');
        // The form comes back ready for another try, with the return path kept.
        eq(await page.inputValue('input[name=return]'), '/?step=wrong', 'return path kept after a failure');
        await page.goto(BASE + '/');
        eq(pathOf(page), '/.sekisho/login', 'portal after a wrong password must not be reachable');
    });
}

async function scenarioLogout(browser) {
    await withContext(browser, USER, {}, async (ctx, page) => {
        await browserLogin(page, USER, '/?step=logout');
        const old = await sessionCookie(ctx);
        // The portal's own "Log out" button leads to the gateway's confirmation page.
        const conf = await submit(page, 'form[action="/.sekisho/logout"] button');
        eq(conf.status(), 200, 'logout confirmation page status');
        eq(pathOf(page), '/.sekisho/logout', 'logout confirmation page path');
        eq(await text(page, 'main strong'), USER, 'logout page names the user');
        const out = await submit(page);
        eq(out.status(), 200, 'page after logout');
        eq(pathOf(page), '/.sekisho/login', 'back at the login page after logout');
        eq(new URL(page.url()).searchParams.get('msg'), 'logged_out', 'logout message parameter');
        eq(await text(page, '.msg.info'), 'You have signed out.', 'signed-out message');
        eq(await sessionCookie(ctx), undefined, 'session cookie after logout');
        // The old token, put back into the browser, must be dead on the server.
        await ctx.addCookies([{
            name: COOKIE, value: old.value, url: BASE, secure: true, httpOnly: true, sameSite: 'Strict',
        }]);
        eq((await sessionCookie(ctx)).value, old.value, 'old cookie re-installed');
        const before = upstreamRequests();
        await page.goto(BASE + '/?step=after-logout');
        eq(pathOf(page), '/.sekisho/login', 'old session after logout must not reach the upstream');
        eq(await page.locator('text=Demo admin portal').count(), 0, 'portal content after logout');
        eq(upstreamRequests(), before, 'requests the upstream got with the old session');
    });
}

async function scenarioTotp(browser) {
    const nowS = () => Math.floor(Date.now() / 1000);
    let enrolStep;
    let key;
    await withContext(browser, TOTP_USER, {}, async (ctx, page) => {
        await browserLogin(page, TOTP_USER, '/?step=totp');
        const r = await page.goto(BASE + '/.sekisho/totp');
        eq(r.status(), 200, 'TOTP enrolment page status');
        eq(await page.locator('.qr svg').count(), 1, 'QR code <svg> on the enrolment page');
        const box = await page.locator('.qr svg').boundingBox();
        check(box !== null && box.width > 100 && box.height > 100, `QR code too small: ${JSON.stringify(box)}`);
        key = await text(page, '.cert code');
        check(/^[A-Z2-7]{16,}=*$/.test(key), `base32 key on the enrolment page: ${JSON.stringify(key)}`);
        await shot(page, 'totp.png');
        const t = nowS();
        enrolStep = Math.floor(t / 30);
        await page.fill('#totp', totpAt(key, t));
        const on = await submit(page);
        eq(on.status(), 200, 'status after confirming the code');
        check((await text(page, '.msg.info')).startsWith('Two-step verification is on'),
            `enrolment confirmation: ${await text(page, 'main')}`);
        await page.goto(BASE + '/.sekisho/logout');
        await submit(page);
        eq(await text(page, '.msg.info'), 'You have signed out.', 'signed out after enrolment');
    });

    // Password alone, or with a wrong code, is not enough now.
    let used;
    await withContext(browser, TOTP_USER, {}, async (ctx, page) => {
        await page.goto(BASE + '/?step=totp-login');
        await expectLoginPage(page, TOTP_USER, 'login page of an enrolled user');
        eq(await page.locator('#totp').count(), 1, 'login form asks for the one-time code');
        const t = nowS();
        const valid = new Set([-1, 0, 1].map((d) => totpAt(key, t + 30 * d)));
        const wrong = ['000000', '111111', '222222', '333333'].find((c) => !valid.has(c));
        await page.fill('#password', password(TOTP_USER));
        await page.fill('#totp', wrong);
        const bad = await submit(page);
        eq(bad.status(), 401, 'status with a wrong one-time code');
        eq(await text(page, '.msg.err'), 'The ID or password is incorrect.', 'message for a wrong code');
        eq(await sessionCookie(ctx), undefined, 'session cookie after a wrong code');

        // A code of a step not used yet: the enrolment step is spent (replay guard).
        let at = nowS();
        if (Math.floor(at / 30) <= enrolStep)
            at = (enrolStep + 1) * 30;
        used = totpAt(key, at);
        await browserLogin(page, TOTP_USER, '/?step=totp-login', { totp: used });
        await expectCookieAttributes(ctx);
    });

    // The same code a second time is refused, in a fresh browser session.
    await withContext(browser, TOTP_USER, {}, async (ctx, page) => {
        await page.goto(BASE + '/');
        await expectLoginPage(page, TOTP_USER, 'login page for the replay');
        await page.fill('#password', password(TOTP_USER));
        await page.fill('#totp', used);
        const again = await submit(page);
        eq(again.status(), 401, 'status when a used code is replayed');
        eq(await sessionCookie(ctx), undefined, 'session cookie after a replayed code');
    });
}

// ---- main --------------------------------------------------------------------------

async function main() {
    const started = Date.now();
    const browser = await chromium.launch({
        executablePath: CHROMIUM, // Debian's chromium; Playwright never downloads one here
        headless: true,
        timeout: WAIT_MS,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    console.log(`browser: Chromium ${browser.version()}, playwright-core ${require('playwright-core/package.json').version}`);
    const scenarios = [
        ['login through the redirect, return path kept, portal greets the user', () => scenarioLogin(browser, true)],
        ['Accept-Language ja gives the Japanese login page', () => scenarioJapanese(browser)],
        ['wrong password: message, no session cookie', () => scenarioWrongPassword(browser)],
        ['logout ends the session on the server', () => scenarioLogout(browser)],
        ['TOTP enrolment with the QR page, then login needs a fresh code', () => scenarioTotp(browser)],
        ['WebSocket from the portal page passes through; none without a session', () => scenarioWebSocket(browser)],
        ['login works with JavaScript disabled', () => scenarioLogin(browser, false)],
    ];
    let n = 0;
    try {
        for (const [what, run] of scenarios) {
            n++;
            const t0 = Date.now();
            try {
                await run();
            } catch (e) {
                const why = e instanceof CheckFailed ? e.message : (e && e.stack) || String(e);
                console.error(`FAIL: browser_login: scenario ${n} (${what}): ${why}`);
                return 1;
            }
            console.log(`ok ${n} - ${what} (${Date.now() - t0} ms)`);
        }
    } finally {
        await browser.close();
    }
    console.log(`${n} scenarios passed in ${Date.now() - started} ms`);
    return 0;
}

main().then((rc) => process.exit(rc), (e) => {
    console.error(`FAIL: browser_login: ${(e && e.stack) || e}`);
    process.exit(1);
});

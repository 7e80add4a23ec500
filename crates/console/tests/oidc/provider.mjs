// A real OpenID Connect provider for the console's tests: the npm package oidc-provider
// (installed by scripts/test into target/tools/oidc), on a free loopback port, with one
// registered client and its development login form (any login and password; the login is
// the account, `<name>@example.com` its email unless it holds an `@`). Consent is granted
// without asking. Reads its settings as JSON from argv[2]; prints `ready <issuer>` once it
// listens, and stops when its standard input closes (the test ended).
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const settings = JSON.parse(process.argv[2]);
const { default: Provider } = await import(pathToFileURL(settings.module).href);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: settings.client_id,
    client_secret: settings.client_secret,
    redirect_uris: settings.redirect_uris,
    post_logout_redirect_uris: settings.redirect_uris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const email = id.includes('@') ? id : `${id}@example.com`;
        return { sub: id, email, email_verified: true, preferred_username: email.split('@')[0] };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
  // The scopes' claims in the ID token itself, as Keycloak and Dex put them.
  conformIdTokenClaims: false,
  cookies: { keys: ['meshtrace-test-only'] },
  ttl: {
    IdToken: settings.id_token_ttl ?? 3600,
    AccessToken: 3600,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));
server.on('request', provider.callback());
console.log(`ready ${issuer}`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

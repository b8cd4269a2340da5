// A real OpenID provider (the certified `oidc-provider` package) for Confab's OIDC sign-in
// tests, on loopback. Started by apps/server/tests/process/oidc.rs; configured by its
// environment:
//   PORT                      the port to listen on (127.0.0.1)
//   ISSUER                    the issuer it names (default http://127.0.0.1:PORT)
//   CLIENT_ID, CLIENT_SECRET  the one (confidential) client, Confab
//   REDIRECT_URI              Confab's /auth/oidc/callback
//   POST_LOGOUT_REDIRECT_URI  where the provider returns after sign-out
// Sign-in uses the package's development login form (any login, any password): the login
// becomes the subject, and the account's name and e-mail are derived from it. Consent is
// granted implicitly (Confab is a first-party client). Prints "listening <port>" when ready.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? '0');
const issuer = process.env.ISSUER ?? `http://127.0.0.1:${port}`;

const configuration = {
  clients: [{
    client_id: process.env.CLIENT_ID ?? 'confab',
    client_secret: process.env.CLIENT_SECRET ?? 'confab-test-secret',
    redirect_uris: [process.env.REDIRECT_URI ?? 'http://127.0.0.1/auth/oidc/callback'],
    post_logout_redirect_uris: [process.env.POST_LOGOUT_REDIRECT_URI ?? 'http://127.0.0.1/'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
  },
  // The scopes' claims go into the ID token (Confab reads name and e-mail from it).
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: `${id[0].toUpperCase()}${id.slice(1)} Tester`,
          email: `${id}@example.test`,
          email_verified: true,
        };
      },
    };
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
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
};

const provider = new Provider(issuer, configuration);
const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

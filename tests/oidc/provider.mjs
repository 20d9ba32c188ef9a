// A real OpenID Connect provider for the sign-in tests: panva's oidc-provider
// (OpenID Certified), on 127.0.0.1, with a signing key of its own per instance.
//
//   PORT=4100 node tests/oidc/provider.mjs
//
// Environment: PORT (required); CLIENTS, a JSON list of
// {client_id, client_secret, redirect_uris} (default: one client "samverkan"
// for the Django test client's http://testserver/konto/sso/svar/).
//
// The interaction is driven without a browser: GET /interaction/<uid> answers
// JSON {uid, prompt, client_id}; POST /interaction/<uid> with form fields
// `login` (the account id, which is the `sub`), `acr` and `amr` (comma-separated)
// signs in and consents to the requested scopes in one step. Test accounts have
// the claims sub, preferred_username and hsa_id ("SE2321000016-" + login).
// Never used outside the tests.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';

import { Provider } from 'oidc-provider';

const port = Number(process.env.PORT);
if (!port) {
  console.error('PORT is required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const clients = process.env.CLIENTS
  ? JSON.parse(process.env.CLIENTS)
  : [
      {
        client_id: 'samverkan',
        client_secret: 'samverkan-test-secret',
        redirect_uris: ['http://testserver/konto/sso/svar/'],
      },
    ];

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    ...client,
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomUUID()] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, hsa_id: `SE2321000016-${id}` };
      },
    };
  },
  claims: {
    acr: null,
    amr: null,
    auth_time: null,
    sid: null,
    iss: null,
    openid: ['sub', 'acr', 'amr', 'auth_time'], // in every ID token
    profile: ['preferred_username'],
    hsa: ['hsa_id'],
  },
  scopes: ['openid', 'profile', 'hsa'],
  acrValues: ['loa2', 'loa3', 'loa4'],
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  ttl: { AuthorizationCode: 60, IdToken: 300, AccessToken: 300, Interaction: 300, Session: 300, Grant: 300 },
});

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const handle = provider.callback();

const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([^/?]+)/.exec(req.url);
  if (!match) {
    handle(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      answer(res, 200, { uid: details.uid, prompt: details.prompt.name, client_id: details.params.client_id });
      return;
    }
    const form = await readForm(req);
    const login = form.get('login');
    if (!login) {
      answer(res, 400, { error: 'login required' });
      return;
    }
    const grant = new provider.Grant({ accountId: login, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope));
    const grantId = await grant.save();
    const amr = (form.get('amr') || 'pwd').split(',').filter(Boolean);
    await provider.interactionFinished(
      req,
      res,
      {
        login: { accountId: login, acr: form.get('acr') || 'loa3', amr },
        consent: { grantId },
      },
      { mergeWithLastSubmission: false },
    );
  } catch (error) {
    answer(res, 400, { error: String(error && error.message) });
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

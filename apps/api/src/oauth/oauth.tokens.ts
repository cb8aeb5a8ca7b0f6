/** `OAuthSettings` derived from the API config. */
export const OAUTH_SETTINGS = Symbol("OAuthSettings");
/** The `OAuthServers` (openid-client configurations) of this process. */
export const OAUTH_SERVERS = Symbol("OAuthServers");

//! Discovery: Okta's metadata document, the claim types our ID tokens carry,
//! and the provider state discovery fills once (the openidconnect client, the
//! end-session and revocation endpoints, the key store). It owns reading and
//! checking the metadata (openidconnect insists the document names our issuer
//! exactly); it must not sign anyone in or verify any token.

use std::time::Instant;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, Client, ClientId, ClientSecret,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IdTokenClaims,
    IdTokenFields, IssuerUrl, ProviderMetadata, RedirectUrl, StandardErrorResponse,
    StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::keys::KeyStore;
use super::{timed, Oidc, OidcError};
use crate::error_chain::error_chain;

/// The discovery fields Okta adds that openidconnect's core type leaves out.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OktaMetadata {
    pub end_session_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
}
impl AdditionalProviderMetadata for OktaMetadata {}

/// The ID-token claims beyond the standard ones: Okta's optional `groups` claim
/// and the IdP session id `sid`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub sid: Option<String>,
}
impl AdditionalClaims for ExtraClaims {}

pub(super) type Metadata = ProviderMetadata<
    OktaMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;
type Fields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
pub(super) type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
pub(super) type OktaIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
pub(super) type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;
pub(super) type OktaClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What discovery learnt about the IdP.
pub(super) struct Provider {
    pub(super) client: OktaClient,
    pub(super) end_session: Option<Url>,
    pub(super) revocation: Option<Url>,
    pub(super) keys: KeyStore,
}

impl Oidc {
    /// Fetches discovery and JWKS. Called at start and retried until it works.
    pub async fn discover(&self) -> Result<(), OidcError> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| OidcError::Discovery(format!("issuer: {e}")))?;
        let started = Instant::now();
        let metadata = Metadata::discover_async(issuer, &self.http).await;
        timed("discovery", metadata.is_ok(), started);
        let metadata = metadata.map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let provider = self.provider_from(metadata)?;
        if let Ok(mut slot) = self.provider.write() {
            *slot = Some(std::sync::Arc::new(provider));
        }
        Ok(())
    }

    /// The provider state for a metadata document that openidconnect has
    /// already checked against our issuer.
    fn provider_from(&self, metadata: Metadata) -> Result<Provider, OidcError> {
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| OidcError::Discovery(format!("redirect URI: {e}")))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let revocation = metadata.additional_metadata().revocation_endpoint.clone();
        let keys = KeyStore::new(metadata.jwks_uri().clone(), metadata.jwks().clone());
        let client = OktaClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(redirect);
        Ok(Provider {
            client,
            end_session,
            revocation,
            keys,
        })
    }
}

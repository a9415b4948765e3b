package dev.specula.sample;

import org.springframework.security.authentication.AuthenticationProvider;
import org.springframework.security.authentication.BadCredentialsException;
import org.springframework.security.core.Authentication;

/**
 * Checks a {@link PresentedApiKey} against the configured keys ({@link ApiKeys}: SHA-256
 * digests compared in constant time) and answers the {@link CallerAuthentication} it
 * belongs to. A wrong key is a {@link BadCredentialsException} whose message holds no
 * part of it.
 */
final class ApiKeyAuthenticationProvider implements AuthenticationProvider {

    private final ApiKeys keys;

    ApiKeyAuthenticationProvider(ApiKeys keys) {
        this.keys = keys;
    }

    @Override
    public Authentication authenticate(Authentication authentication) {
        Object key = authentication.getCredentials();
        ApiKeys.Caller caller = key instanceof String presented ? keys.authenticate(presented) : null;
        if (caller == null) {
            throw new BadCredentialsException("Incorrect API key");
        }
        return new CallerAuthentication(caller);
    }

    @Override
    public boolean supports(Class<?> authentication) {
        return PresentedApiKey.class.isAssignableFrom(authentication);
    }

}

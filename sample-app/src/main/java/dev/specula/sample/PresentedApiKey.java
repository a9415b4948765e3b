package dev.specula.sample;

import java.util.List;

import org.jspecify.annotations.Nullable;
import org.springframework.security.authentication.AbstractAuthenticationToken;

/**
 * The key a request presents ({@code Authorization: Bearer <key>}), not yet checked
 * ({@link ApiKeyAuthenticationProvider}). The key is its credentials only: never its
 * principal, its name or its {@link #toString()}, so no log line or exception message
 * that prints the token shows it.
 */
final class PresentedApiKey extends AbstractAuthenticationToken {

    private static final String NAME = "(API key)";

    private @Nullable String key;

    PresentedApiKey(String key) {
        super(List.of());
        this.key = key;
        setAuthenticated(false);
    }

    /** The presented key; null once erased. */
    @Override
    public @Nullable String getCredentials() {
        return key;
    }

    @Override
    public String getPrincipal() {
        return NAME;
    }

    @Override
    public void eraseCredentials() {
        super.eraseCredentials();
        key = null;
    }

    @Override
    public boolean equals(Object other) {
        return this == other;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(this);
    }

    @Override
    public String toString() {
        return "PresentedApiKey [hidden]";
    }

}

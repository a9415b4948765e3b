package dev.specula.sample;

import java.util.List;

import org.jspecify.annotations.Nullable;
import org.springframework.security.authentication.AbstractAuthenticationToken;
import org.springframework.security.core.GrantedAuthority;
import org.springframework.security.core.authority.SimpleGrantedAuthority;

/**
 * A request whose API key was accepted: its principal is the {@link ApiKeys.Caller} the
 * rate limits count under (a digest prefix, not the key), its roles {@code USER} for
 * every key and {@code ADMIN} too for an admin key. It holds no key.
 */
final class CallerAuthentication extends AbstractAuthenticationToken {

    static final String USER = "USER";

    static final String ADMIN = "ADMIN";

    private static final List<GrantedAuthority> USER_ROLES = List.of(new SimpleGrantedAuthority("ROLE_" + USER));

    private static final List<GrantedAuthority> ADMIN_ROLES = List.of(new SimpleGrantedAuthority("ROLE_" + USER),
            new SimpleGrantedAuthority("ROLE_" + ADMIN));

    private final ApiKeys.Caller caller;

    CallerAuthentication(ApiKeys.Caller caller) {
        super(caller.admin() ? ADMIN_ROLES : USER_ROLES);
        this.caller = caller;
        setAuthenticated(true);
    }

    @Override
    public ApiKeys.Caller getPrincipal() {
        return caller;
    }

    /** None: the key is not kept once checked. */
    @Override
    public @Nullable Object getCredentials() {
        return null;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof CallerAuthentication that && caller.equals(that.caller);
    }

    @Override
    public int hashCode() {
        return caller.hashCode();
    }

}

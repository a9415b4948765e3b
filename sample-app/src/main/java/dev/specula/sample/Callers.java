package dev.specula.sample;

import jakarta.servlet.http.HttpServletRequest;
import org.springframework.security.core.Authentication;
import org.springframework.security.core.context.SecurityContextHolder;

/**
 * Who sent a request, as the rate limits count it: the {@link ApiKeys.Caller} of its
 * accepted key ({@link CallerAuthentication}), or its address when the gateway has no
 * keys (or the request needed none).
 */
final class Callers {

    private Callers() {
    }

    /**
     * The caller of {@code request}, read from the security context of the thread that
     * serves it.
     */
    static ApiKeys.Caller of(HttpServletRequest request) {
        Authentication authentication = SecurityContextHolder.getContext().getAuthentication();
        return (authentication != null && authentication.getPrincipal() instanceof ApiKeys.Caller caller) ? caller
                : ApiKeys.Caller.address(request.getRemoteAddr());
    }

}

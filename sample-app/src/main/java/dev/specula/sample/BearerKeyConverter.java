package dev.specula.sample;

import jakarta.servlet.http.HttpServletRequest;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.security.web.authentication.AuthenticationConverter;

/**
 * Reads the key of {@code Authorization: Bearer <key>} (the scheme case-insensitive, as
 * RFC 9110 says). No header, another scheme or a blank key is no key at all: the request
 * stays anonymous and, where a key is needed, is answered "You didn't provide an API key"
 * ({@link OpenAiAuthenticationEntryPoint}).
 */
final class BearerKeyConverter implements AuthenticationConverter {

    private static final String BEARER = "bearer ";

    @Override
    public @Nullable PresentedApiKey convert(HttpServletRequest request) {
        String header = request.getHeader(HttpHeaders.AUTHORIZATION);
        if (header == null || !header.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
            return null;
        }
        String key = header.substring(BEARER.length()).strip();
        return key.isEmpty() ? null : new PresentedApiKey(key);
    }

}

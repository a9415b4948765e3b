package dev.specula.sample;

import java.io.IOException;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.web.filter.OncePerRequestFilter;
import tools.jackson.databind.ObjectMapper;

/**
 * Counts every {@code /v1/} request against its caller's requests per minute
 * ({@link RateLimits}), after the API key was checked (so the key names the caller), and
 * answers 429 in OpenAI's shape when they are spent. It is the last filter of Spring
 * Security's chain, after authorization ({@link GatewaySecurity}), so a request refused
 * 401 or 403 is never counted; not a bean, so that it is not also a servlet filter.
 * Tokens per minute are counted by the endpoints that generate, which know
 * {@code max_tokens}.
 */
class RateLimitFilter extends OncePerRequestFilter {

    private final RateLimits limits;

    private final ObjectMapper json;

    RateLimitFilter(RateLimits limits, ObjectMapper json) {
        this.limits = limits;
        this.json = json;
    }

    @Override
    protected boolean shouldNotFilter(HttpServletRequest request) {
        return !limits.limitsRequests() || !request.getServletPath().startsWith("/v1/");
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        try {
            limits.admitRequest(Callers.of(request), response);
        }
        catch (RateLimitExceededException ex) {
            ErrorResponses.write(response, json, OpenAiErrors.toResponse(ex, RequestIds.of(request)));
            return;
        }
        chain.doFilter(request, response);
    }

}

package dev.specula.sample;

import java.io.IOException;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpHeaders;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;
import tools.jackson.databind.ObjectMapper;

/**
 * Asks for an API key ({@code Authorization: Bearer <key>}) when keys are configured
 * ({@link ApiKeys}), deny by default:
 *
 * <pre>
 * GET/HEAD /actuator/health, /actuator/health/{group...}   open (load balancers, probes)
 * GET/HEAD the playground's static files ({@link #PAGES})  open (no data; the page sends the key it is given)
 * POST/PUT/PATCH/DELETE outside /v1/ (Actuator writes)     an admin key, else 403
 * anything else (/v1/**, Actuator reads, unknown paths)     any key, else 401
 * </pre>
 *
 * A missing or wrong key is a 401 {@code invalid_api_key} with
 * {@code WWW-Authenticate: Bearer}. The open paths are matched on the raw URI (health:
 * letters, digits, {@code -} and {@code _} only; the pages: exactly), so no encoding or
 * {@code ..} reaches another endpoint through them; the admin rule on the decoded,
 * normalized path, so none escapes it. Keys are never logged. Without keys everyone
 * passes, known by address for the rate limits, and the start logs one warning.
 */
@Component
@Order(Ordered.HIGHEST_PRECEDENCE + 20)
class ApiKeyFilter extends OncePerRequestFilter {

    static final String INVALID_API_KEY = "invalid_api_key";

    static final String INSUFFICIENT_PERMISSIONS = "insufficient_permissions";

    private static final String ATTRIBUTE = ApiKeyFilter.class.getName() + ".caller";

    private static final Pattern HEALTH = Pattern.compile("/actuator/health(/[A-Za-z0-9_-]+)*/?");

    /**
     * The playground's static files: a browser cannot send a key when it loads a page,
     * and they hold no data.
     */
    static final Set<String> PAGES = Set.of("/", "/index.html", "/playground.css", "/playground.js");

    private static final String BEARER = "bearer ";

    private static final Logger logger = LoggerFactory.getLogger(ApiKeyFilter.class);

    private final ApiKeys keys;

    private final ObjectMapper json;

    ApiKeyFilter(GatewayProperties properties, ObjectMapper json) {
        this.keys = ApiKeys.of(properties);
        this.json = json;
        String prefix = GatewayProperties.CONFIG_PREFIX;
        if (!keys.enabled()) {
            logger.warn("No API keys are configured ({}.api-keys, api-keys-file, admin-api-keys): /v1/** and every "
                    + "Actuator endpoint, cache clearing included, are open to anyone who can reach this port; "
                    + "set {}.api-keys to require keys", prefix, prefix);
        }
        else if (keys.shortKeys() > 0) {
            logger.warn("{} API key(s) are shorter than {} characters and easy to guess: use long random keys "
                    + "(e.g. openssl rand -hex 32)", keys.shortKeys(), ApiKeys.SHORT);
        }
    }

    /** Who sent {@code request}: its key's caller, or its address without keys. */
    static ApiKeys.Caller callerOf(HttpServletRequest request) {
        Object caller = request.getAttribute(ATTRIBUTE);
        return caller instanceof ApiKeys.Caller known ? known : ApiKeys.Caller.address(request.getRemoteAddr());
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        if (!keys.enabled() || isOpen(request)) {
            chain.doFilter(request, response);
            return;
        }
        String header = request.getHeader(HttpHeaders.AUTHORIZATION);
        if (header == null || !header.regionMatches(true, 0, BEARER, 0, BEARER.length())
                || header.substring(BEARER.length()).isBlank()) {
            unauthorized(response,
                    "You didn't provide an API key. Send it in the Authorization header as "
                            + "'Authorization: Bearer <key>'; the server's operator issues keys ("
                            + property("api-keys") + ").");
            return;
        }
        ApiKeys.Caller caller = keys.authenticate(header.substring(BEARER.length()).strip());
        if (caller == null) {
            unauthorized(response, "Incorrect API key provided. Send a key the server's operator issued ("
                    + property("api-keys") + ") as 'Authorization: Bearer <key>'.");
            return;
        }
        if (needsAdmin(request) && !caller.admin()) {
            ErrorResponses.write(response, json,
                    OpenAiErrors.error(org.springframework.http.HttpStatus.FORBIDDEN, OpenAiErrors.INVALID_REQUEST,
                            "This API key may not call " + request.getMethod() + " " + request.getRequestURI()
                                    + ": Actuator write operations need a key listed in " + property("admin-api-keys")
                                    + " (or " + property("admin-api-keys-file") + ")",
                            null, INSUFFICIENT_PERMISSIONS));
            return;
        }
        request.setAttribute(ATTRIBUTE, caller);
        chain.doFilter(request, response);
    }

    /**
     * Health, read by load balancers and probes, and the playground's static files need
     * no key.
     */
    static boolean isOpen(HttpServletRequest request) {
        String method = request.getMethod();
        String path = request.getRequestURI().substring(request.getContextPath().length());
        return ("GET".equals(method) || "HEAD".equals(method))
                && (HEALTH.matcher(path).matches() || PAGES.contains(path));
    }

    /**
     * A write outside the OpenAI API: the Actuator's write operations (and anything
     * unknown that writes).
     */
    static boolean needsAdmin(HttpServletRequest request) {
        String method = request.getMethod().toUpperCase(Locale.ROOT);
        boolean write = !("GET".equals(method) || "HEAD".equals(method) || "OPTIONS".equals(method));
        String path = request.getServletPath() + (request.getPathInfo() != null ? request.getPathInfo() : "");
        return write && !path.startsWith("/v1/");
    }

    private void unauthorized(HttpServletResponse response, String message) throws IOException {
        response.setHeader(HttpHeaders.WWW_AUTHENTICATE, "Bearer");
        ErrorResponses.write(response, json, OpenAiErrors.error(org.springframework.http.HttpStatus.UNAUTHORIZED,
                OpenAiErrors.INVALID_REQUEST, message, null, INVALID_API_KEY));
    }

    private static String property(String name) {
        return GatewayProperties.CONFIG_PREFIX + "." + name;
    }

}

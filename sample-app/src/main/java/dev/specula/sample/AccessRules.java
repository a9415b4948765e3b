package dev.specula.sample;

import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

import jakarta.servlet.http.HttpServletRequest;
import org.springframework.security.web.util.matcher.RequestMatcher;

/**
 * Which requests need no API key and which need an admin key ({@link GatewaySecurity}):
 *
 * <pre>
 * GET/HEAD /actuator/health, /actuator/health/{group...}   open (load balancers, probes)
 * GET/HEAD the playground's static files ({@link #PAGES})  open (no data; the page sends the key it is given)
 * POST/PUT/PATCH/DELETE outside /v1/ (Actuator writes)     an admin key
 * anything else (/v1/**, Actuator reads, unknown paths)     any key
 * </pre>
 *
 * The open paths are matched on the raw URI (health: letters, digits, {@code -} and
 * {@code _} only; the pages: exactly), so no encoding or {@code ..} reaches another
 * endpoint through them; the admin rule on the decoded, normalized path, so none escapes
 * it.
 */
final class AccessRules {

    /** Requests that need no key: health and the playground's static files. */
    static final RequestMatcher OPEN = AccessRules::isOpen;

    /** Requests that need an admin key: writes outside the OpenAI API. */
    static final RequestMatcher ADMIN_WRITES = AccessRules::needsAdmin;

    private static final Pattern HEALTH = Pattern.compile("/actuator/health(/[A-Za-z0-9_-]+)*/?");

    /**
     * The playground's static files: a browser cannot send a key when it loads a page,
     * and they hold no data.
     */
    static final Set<String> PAGES = Set.of("/", "/index.html", "/playground.css", "/playground.js");

    private AccessRules() {
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

}

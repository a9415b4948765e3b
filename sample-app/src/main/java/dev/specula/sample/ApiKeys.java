package dev.specula.sample;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;

/**
 * The configured API keys, kept only as SHA-256 digests: a presented key is hashed and
 * compared with every digest in constant time ({@link MessageDigest#isEqual}, no early
 * exit), so neither timing nor a heap dump of this object gives a key away. Keys come
 * from {@code specula.gateway.api-keys}, {@code api-keys-file}, {@code admin-api-keys}
 * and {@code admin-api-keys-file}; an admin key is an API key too.
 */
final class ApiKeys {

    /** Keys shorter than this are easy to guess; the gateway warns about them. */
    static final int SHORT = 20;

    /** Digests of every key, admin keys included. */
    private final List<byte[]> keys;

    /** Digests of the admin keys. */
    private final List<byte[]> adminKeys;

    /** How many configured keys are shorter than {@link #SHORT}. */
    private final int shortKeys;

    private ApiKeys(List<byte[]> keys, List<byte[]> adminKeys, int shortKeys) {
        this.keys = keys;
        this.adminKeys = adminKeys;
        this.shortKeys = shortKeys;
    }

    /**
     * The keys of {@code properties}, files read.
     * @throws InvalidConfigurationPropertyValueException for a blank key, a key with
     * white space, or a key file that cannot be read, naming the property
     */
    static ApiKeys of(GatewayProperties properties) {
        String prefix = GatewayProperties.CONFIG_PREFIX;
        List<String> plain = new ArrayList<>();
        add(plain, properties.getApiKeys(), prefix + ".api-keys");
        add(plain, read(properties.getApiKeysFile(), prefix + ".api-keys-file"), prefix + ".api-keys-file");
        List<String> admin = new ArrayList<>();
        add(admin, properties.getAdminApiKeys(), prefix + ".admin-api-keys");
        add(admin, read(properties.getAdminApiKeysFile(), prefix + ".admin-api-keys-file"),
                prefix + ".admin-api-keys-file");
        List<byte[]> keys = new ArrayList<>();
        List<byte[]> adminKeys = new ArrayList<>();
        int shortKeys = 0;
        for (String key : plain) {
            keys.add(digest(key));
            shortKeys += key.length() < SHORT ? 1 : 0;
        }
        for (String key : admin) {
            keys.add(digest(key));
            adminKeys.add(digest(key));
            shortKeys += key.length() < SHORT ? 1 : 0;
        }
        return new ApiKeys(List.copyOf(keys), List.copyOf(adminKeys), shortKeys);
    }

    /** Whether any key is configured: without one the gateway is open. */
    boolean enabled() {
        return !keys.isEmpty();
    }

    /** How many keys are shorter than {@link #SHORT} characters. */
    int shortKeys() {
        return shortKeys;
    }

    /**
     * Who presents {@code key}: null when it is no configured key. Every digest is
     * compared, whichever matches.
     */
    Caller authenticate(String key) {
        byte[] presented = digest(key);
        int match = -1;
        for (int i = 0; i < keys.size(); i++) {
            if (MessageDigest.isEqual(keys.get(i), presented)) {
                match = i;
            }
        }
        if (match < 0) {
            return null;
        }
        boolean admin = false;
        for (byte[] adminKey : adminKeys) {
            admin |= MessageDigest.isEqual(adminKey, presented);
        }
        // the digest's first 6 bytes name the key in rate limits: not the key, and the
        // same for the same key
        return new Caller("key:" + HexFormat.of().formatHex(presented, 0, 6), admin);
    }

    private static void add(List<String> into, List<String> keys, String property) {
        if (keys == null) {
            return;
        }
        for (int i = 0; i < keys.size(); i++) {
            String key = keys.get(i) == null ? "" : keys.get(i).strip();
            String where = property + "[" + i + "]";
            if (key.isEmpty()) {
                throw new InvalidConfigurationPropertyValueException(where, "",
                        "An API key must not be blank: remove the entry or give it a key");
            }
            if (key.chars().anyMatch((c) -> Character.isWhitespace(c) || Character.isISOControl(c))) {
                // the value is a secret: never shown
                throw new InvalidConfigurationPropertyValueException(where, "(hidden)",
                        "An API key must not contain white space or control characters: clients send it in "
                                + "an Authorization: Bearer header");
            }
            into.add(key);
        }
    }

    /**
     * The keys of {@code file}, one a line; blank lines and {@code #} comments skipped.
     */
    private static List<String> read(Path file, String property) {
        if (file == null) {
            return List.of();
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        }
        catch (IOException ex) {
            throw new InvalidConfigurationPropertyValueException(property, file, "The file cannot be read (" + ex
                    + "): point " + property + " at a readable file with one key a line, or unset it");
        }
        return lines.stream().map(String::strip).filter((line) -> !line.isEmpty() && !line.startsWith("#")).toList();
    }

    private static byte[] digest(String key) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        }
        catch (NoSuchAlgorithmException ex) {
            throw new IllegalStateException("Every Java runtime has SHA-256", ex);
        }
    }

    /**
     * Who sent a request.
     *
     * @param id the name rate limits count under: {@code key:} and the start of the key's
     * digest, or {@code address:} and the client's address when the gateway has no keys
     * @param admin whether the key may call the Actuator's write operations
     */
    record Caller(String id, boolean admin) {

        /** A caller known by address only (no keys configured). */
        static Caller address(String address) {
            return new Caller("address:" + address, false);
        }

    }

}

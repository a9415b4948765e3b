package dev.specula.autoconfigure;

import org.springframework.core.io.Resource;
import org.springframework.core.io.ResourceLoader;
import org.springframework.core.io.support.PathMatchingResourcePatternResolver;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Turns a model location property ({@code /models/x}, {@code file:/models/x}, {@code classpath:models/x},
 * a directory or its {@code model.onnx}) into a file-system path: ONNX Runtime loads models from paths
 * (external weights, models over 2 GB). A classpath directory inside a jar is copied out once to
 * {@code java.io.tmpdir/specula-models/<hash of location>}.
 */
final class ModelLocations {

    private static final String CLASSPATH = "classpath:";
    private static final String FILE = "file:";

    private ModelLocations() {
    }

    static Path resolve(String location, String property, ResourceLoader resourceLoader) {
        if (location == null || location.isBlank()) {
            throw new ConfiguredModelLoadException(property, Path.of(""), "No model location: set " + property
                    + " to a model directory (file: or classpath:), or add dev.specula:specula-models-tiny for the embedded pair");
        }
        String trimmed = location.trim();
        if (!trimmed.startsWith(CLASSPATH)) {
            Path path = filePath(trimmed, property);
            if (!Files.exists(path)) {
                throw new ConfiguredModelLoadException(property, path, "Model location " + path.toAbsolutePath() + " (" + property
                        + ") does not exist: point " + property + " at a directory with model.onnx, config.json and tokenizer.json");
            }
            return path;
        }
        Resource resource = resourceLoader.getResource(trimmed);
        try {
            if (resource.exists() && resource.isFile()) {
                return resource.getFile().toPath();
            }
            return extract(trimmed, property, resourceLoader);
        }
        catch (IOException ex) {
            throw new ConfiguredModelLoadException(property, Path.of(trimmed.substring(CLASSPATH.length())), "Cannot read model location "
                    + trimmed + " (" + property + "): " + ex.getMessage(), ex);
        }
    }

    /** {@code /x}, {@code file:/x}, {@code file:///x} or {@code file:relative/x} as a path. */
    private static Path filePath(String location, String property) {
        if (!location.startsWith(FILE)) {
            return Path.of(location);
        }
        try {
            return location.startsWith(FILE + "//") ? Path.of(URI.create(location)) : Path.of(location.substring(FILE.length()));
        }
        catch (IllegalArgumentException ex) {
            throw new ConfiguredModelLoadException(property, Path.of(location.substring(FILE.length())), "Model location "
                    + location + " (" + property + ") is not a valid file: URL: " + ex.getMessage(), ex);
        }
    }

    /** Copies every resource under a classpath directory (in a jar) to a directory of its own. */
    private static Path extract(String location, String property, ResourceLoader resourceLoader) throws IOException {
        String directory = location.substring(CLASSPATH.length()).replaceFirst("^/+", "").replaceFirst("/+$", "");
        String modelFile = null;
        if (directory.endsWith(".onnx")) {
            int slash = directory.lastIndexOf('/');
            modelFile = directory.substring(slash + 1);
            directory = slash < 0 ? "" : directory.substring(0, slash);
        }
        PathMatchingResourcePatternResolver resolver = new PathMatchingResourcePatternResolver(resourceLoader);
        Resource[] resources = resolver.getResources("classpath*:" + directory + "/*");
        if (resources.length == 0) {
            throw new ConfiguredModelLoadException(property, Path.of(directory), "Nothing found at " + location + " (" + property
                    + "): put the model directory on the classpath, or point " + property + " at a file: location");
        }
        Path target = Path.of(System.getProperty("java.io.tmpdir"), "specula-models", hash(location));
        Files.createDirectories(target);
        for (Resource resource : resources) {
            String name = resource.getFilename();
            if (name == null || name.isEmpty() || !resource.isReadable()) {
                continue;
            }
            Path file = target.resolve(name);
            if (Files.exists(file) && Files.size(file) == resource.contentLength()) {
                continue;
            }
            Path partial = Files.createTempFile(target, name, ".part");
            try (InputStream in = resource.getInputStream()) {
                Files.copy(in, partial, StandardCopyOption.REPLACE_EXISTING);
            }
            Files.move(partial, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        return modelFile == null ? target : target.resolve(modelFile);
    }

    private static String hash(String location) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(location.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 8);
        }
        catch (NoSuchAlgorithmException ex) {
            throw new IllegalStateException(ex);
        }
    }
}

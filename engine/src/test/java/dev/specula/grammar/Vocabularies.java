package dev.specula.grammar;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import dev.specula.Fixtures;

/**
 * The vocabularies grammar tests run on: the fixtures' tokenizers, the embedded pair's
 * (4,096 ids) and a synthetic 150,000-token byte-level one. Each is read once.
 */
final class Vocabularies {

    private static final Map<String, TokenVocabulary> READ = new HashMap<>();

    private Vocabularies() {
    }

    static synchronized TokenVocabulary fixture(String model) {
        return READ.computeIfAbsent(model, (name) -> TokenVocabulary.read(tokenizer(name)));
    }

    static Path tokenizer(String model) {
        if (model.equals("tiny")) {
            return embeddedTokenizer();
        }
        if (model.equals("stories260K")) {
            return Fixtures.path("tokenizers/stories260K/tokenizer.json");
        }
        return Fixtures.model(model).resolve("tokenizer.json");
    }

    /** The embedded pair's target tokenizer, copied out of the classpath. */
    private static Path embeddedTokenizer() {
        try (InputStream in = Vocabularies.class
            .getResourceAsStream("/dev/specula/models/tiny/target/tokenizer.json")) {
            if (in == null) {
                throw new IllegalStateException("The embedded pair's tokenizer is not on the classpath");
            }
            Path file = Files.createTempFile("tiny-tokenizer", ".json");
            file.toFile().deleteOnExit();
            Files.write(file, in.readAllBytes());
            return file;
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /**
     * {@code size} ids: id 0 a special end token, 1..256 the single bytes, then distinct
     * random strings of 2 to 12 characters, printable ASCII mostly (JSON punctuation and
     * spaces included) with some two- and three-byte characters.
     */
    static synchronized TokenVocabulary synthetic(int size) {
        return READ.computeIfAbsent("synthetic-" + size, (name) -> buildSynthetic(size));
    }

    private static TokenVocabulary buildSynthetic(int size) {
        Random random = new Random(size);
        byte[][] bytes = new byte[size][];
        boolean[] special = new boolean[size];
        bytes[0] = "<|end|>".getBytes(StandardCharsets.UTF_8);
        special[0] = true;
        for (int b = 0; b < 256; b++) {
            bytes[b + 1] = new byte[] { (byte) b };
        }
        String alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789    \"{}[],:.-_\\/\n";
        Set<String> seen = new HashSet<>();
        for (int id = 257; id < size; id++) {
            String text;
            do {
                StringBuilder builder = new StringBuilder();
                int length = 2 + random.nextInt(11);
                for (int i = 0; i < length; i++) {
                    int pick = random.nextInt(40);
                    if (pick == 0) {
                        builder.append((char) (0xE0 + random.nextInt(32)));
                    }
                    else if (pick == 1) {
                        builder.append((char) (0x4E00 + random.nextInt(500)));
                    }
                    else {
                        builder.append(alphabet.charAt(random.nextInt(alphabet.length())));
                    }
                }
                text = builder.toString();
            }
            while (!seen.add(text));
            bytes[id] = text.getBytes(StandardCharsets.UTF_8);
        }
        return TokenVocabulary.of(bytes, special);
    }

}

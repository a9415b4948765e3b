package dev.specula;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.syntax.ArchRuleDefinition;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The layering of specula-spring-ai over the engine: only {@code dev.specula.chat} speaks
 * Spring (AI), the serving layer stays framework-neutral (Caffeine, Resilience4j,
 * Micrometer), and the engine never reaches up.
 */
class SpringAiArchitectureTest {

    private static JavaClasses classes;

    @BeforeAll
    static void importClasses() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("dev.specula.chat", "dev.specula.serving");
    }

    @Test
    void onlyTheChatPackageUsesSpring() {
        ArchRuleDefinition.noClasses()
            .that()
            .resideOutsideOfPackage("dev.specula.chat..")
            .should()
            .dependOnClassesThat()
            .resideInAnyPackage("org.springframework..", "reactor..")
            .check(classes);
    }

    @Test
    void servingDoesNotDependOnTheChatModel() {
        ArchRuleDefinition.noClasses()
            .that()
            .resideInAPackage("dev.specula.serving..")
            .should()
            .dependOnClassesThat()
            .resideInAPackage("dev.specula.chat..")
            .check(classes);
    }

}

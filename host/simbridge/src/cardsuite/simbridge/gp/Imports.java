package cardsuite.simbridge.gp;

import java.util.Arrays;

/**
 * The linking check at the end of LOAD: every package a CAP imports must be on the card in a binary compatible
 * version (JCVM Spec §4.5: same major, minor at least the one converted against); else the card answers 6438.
 * The platform is jCardSim's Java Card 3.0.5: the Java Card API packages (RID A000000062) up to version 1.6, and
 * the GlobalPlatform API (A00000015100) 1.x, so a CAP converted for Java Card 3.1 or later is refused too.
 */
final class Imports {
    private static final byte[] JAVA_CARD_RID = Bytes.fromHex("A000000062");
    private static final byte[] GP_API = Bytes.fromHex("A00000015100");
    /** javacard.framework and friends are 1.6 in Java Card 3.0.5 (3.1 moved them to 1.8). */
    static final int PLATFORM_MINOR = 6;

    private final Registry registry;

    Imports(Registry registry) {
        this.registry = registry;
    }

    void check(CapFile cap) {
        for (CapFile.PackageRef ref : cap.imports) {
            if (!present(ref)) {
                throw new GpException(Sw.IMPORT_NOT_FOUND, "imported package " + ref + " is not on the card");
            }
        }
    }

    private boolean present(CapFile.PackageRef ref) {
        if (Registry.startsWith(ref.aid, JAVA_CARD_RID)) {
            return ref.major == 1 && ref.minor <= PLATFORM_MINOR;
        }
        if (Arrays.equals(ref.aid, GP_API)) {
            return ref.major == 1;
        }
        Registry.LoadFile file = registry.loadFile(ref.aid);
        return file != null && file.major == ref.major && file.minor >= ref.minor;
    }
}

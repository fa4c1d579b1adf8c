package cardsuite.simbridge;

import javacard.framework.Util;
import javacard.security.Key;
import javacard.security.KeyBuilder;

/**
 * The persistent-write entry points that {@link PersistentWriteInstrumenter} puts into applet bytecode in place of
 * array stores, field stores and the writing {@link Util} methods. Each one finds the active card, and when the
 * target is persistent memory lets that card's {@link WriteJournal} count the write, tear the power at it, or log
 * the old contents for a transaction; then it does what the replaced instruction or call did.
 * Public only because instrumented applet classes live in other packages and class loaders.
 */
public final class PersistentMemory {
    private PersistentMemory() {
    }

    // ---- array stores (xASTORE); BASTORE serves both byte[] and boolean[], hence Object

    public static void storeByte(Object array, int index, int value) {
        beforeElementWrite(array, index);
        if (array instanceof boolean[]) {
            ((boolean[]) array)[index] = (value & 1) != 0;
        } else {
            ((byte[]) array)[index] = (byte) value;
        }
    }

    public static void storeShort(short[] array, int index, int value) {
        beforeElementWrite(array, index);
        array[index] = (short) value;
    }

    public static void storeChar(char[] array, int index, int value) {
        beforeElementWrite(array, index);
        array[index] = (char) value;
    }

    public static void storeInt(int[] array, int index, int value) {
        beforeElementWrite(array, index);
        array[index] = value;
    }

    public static void storeLong(long[] array, int index, long value) {
        beforeElementWrite(array, index);
        array[index] = value;
    }

    public static void storeFloat(float[] array, int index, float value) {
        beforeElementWrite(array, index);
        array[index] = value;
    }

    public static void storeDouble(double[] array, int index, double value) {
        beforeElementWrite(array, index);
        array[index] = value;
    }

    public static void storeReference(Object[] array, int index, Object value) {
        if (array != null && value != null && !array.getClass().getComponentType().isInstance(value)) {
            throw new ArrayStoreException(value.getClass().getName());
        }
        beforeElementWrite(array, index);
        array[index] = value;
    }

    // ---- field stores: called just before the PUTFIELD/PUTSTATIC, which stays in place

    public static void beforeFieldWrite(Object target, Class<?> owner, String name) {
        if (target == null) {
            return; // the PUTFIELD throws NullPointerException; nothing is written
        }
        CardRuntime card = CardRuntime.active();
        if (card != null) {
            card.journal.beforeFieldWrite(target, owner, name);
        }
    }

    public static void beforeStaticWrite(Class<?> owner, String name) {
        CardRuntime card = CardRuntime.active();
        if (card != null) {
            card.journal.beforeFieldWrite(null, owner, name);
        }
    }

    // ---- javacard.framework.Util writers, same signatures

    /** Atomic even outside a transaction (JC API): torn means not copied at all. */
    public static short arrayCopy(byte[] src, short srcOff, byte[] dest, short destOff, short length) {
        WriteJournal journal = journalFor(dest);
        if (journal != null) {
            WriteJournal.checkRange(src, srcOff, length);
            journal.beforeAtomicWrite(dest, destOff, length);
        }
        return Util.arrayCopy(src, srcOff, dest, destOff, length);
    }

    /** Never logged, even inside a transaction (JC API); torn means the first half is copied. */
    public static short arrayCopyNonAtomic(byte[] src, short srcOff, byte[] dest, short destOff, short length) {
        WriteJournal journal = journalFor(dest);
        if (journal != null) {
            WriteJournal.checkRange(src, srcOff, length);
            WriteJournal.checkRange(dest, destOff, length);
            if (!journal.admitWrite()) {
                Util.arrayCopyNonAtomic(src, srcOff, dest, destOff, (short) (length / 2));
                throw PowerLoss.INSTANCE;
            }
        }
        return Util.arrayCopyNonAtomic(src, srcOff, dest, destOff, length);
    }

    /** Never logged, even inside a transaction (JC API); torn means the first half is filled. */
    public static short arrayFillNonAtomic(byte[] bArray, short bOff, short bLen, byte bValue) {
        WriteJournal journal = journalFor(bArray);
        if (journal != null) {
            WriteJournal.checkRange(bArray, bOff, bLen);
            if (!journal.admitWrite()) {
                Util.arrayFillNonAtomic(bArray, bOff, (short) (bLen / 2), bValue);
                throw PowerLoss.INSTANCE;
            }
        }
        return Util.arrayFillNonAtomic(bArray, bOff, bLen, bValue);
    }

    /** Both bytes or neither (JC API). */
    public static short setShort(byte[] bArray, short bOff, short sValue) {
        WriteJournal journal = journalFor(bArray);
        if (journal != null) {
            journal.beforeAtomicWrite(bArray, bOff, 2);
        }
        return Util.setShort(bArray, bOff, sValue);
    }

    // ---- javacard.security.KeyBuilder, same signatures: a transient key is cleared with its event

    public static Key buildKey(byte keyType, short keyLength, boolean keyEncryption) {
        Key key = KeyBuilder.buildKey(keyType, keyLength, keyEncryption);
        registerKey(key, ContextTransientMemory.eventOfKeyType(keyType));
        return key;
    }

    /** JC 3.0.5's variant: the memory type is JCSystem.MEMORY_TYPE_* (1 = CLEAR_ON_RESET, 2 = CLEAR_ON_DESELECT). */
    public static Key buildKey(byte algorithmicKeyType, byte keyMemoryType, short keyLength, boolean keyEncryption) {
        Key key = KeyBuilder.buildKey(algorithmicKeyType, keyMemoryType, keyLength, keyEncryption);
        registerKey(key, keyMemoryType);
        return key;
    }

    private static void registerKey(Key key, byte event) {
        CardRuntime card = CardRuntime.active();
        if (card != null) {
            card.registerTransientKey(key, event);
        }
    }

    /** Counts a crypto operation (MessageDigest.doFinal, Signature.sign, ...) of the active card's command. */
    public static void countOperation(String name) {
        CardRuntime card = CardRuntime.active();
        if (card != null) {
            card.journal.countOperation(name);
        }
    }

    private static void beforeElementWrite(Object array, int index) {
        WriteJournal journal = journalFor(array);
        if (journal != null) {
            journal.beforeAtomicWrite(array, index, 1);
        }
    }

    /** The active card's journal if {@code array} is its persistent memory; null otherwise (or for null). */
    private static WriteJournal journalFor(Object array) {
        if (array == null) {
            return null;
        }
        CardRuntime card = CardRuntime.active();
        return card != null && card.isPersistent(array) ? card.journal : null;
    }
}

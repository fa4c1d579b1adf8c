package cardsuite.isocmd;

import cardsuite.isofs.CyclicRecordFile;
import cardsuite.isofs.DedicatedFile;
import cardsuite.isofs.ISOFile;
import cardsuite.isofs.RecordFile;
import cardsuite.isofs.TransparentFile;
import cardsuite.isofs.VariableRecordFile;
import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * CREATE FILE (ISO 7816-9 6.1): validates the whole FCP template before anything is allocated, then
 * creates the file in the current DF in one transaction and makes it the current file. The template
 * may also be an FCI (6F) and give the size in tag 81 (total bytes) instead of 80, as generic clients
 * (OpenSC's iso7816_construct_fci) send it; 80 wins when both are there.
 */
final class FileFactory {
    private static final short MARGIN = 64; // object headers and fields of a new file, roughly
    /** FCP object: total number of bytes of the file (ISO 7816-4 FCP tag 81); used when 80 is absent. */
    private static final byte TAG_TOTAL_SIZE = (byte) 0x81;

    private FileFactory() {
    }

    static void create(FileSystem fs, APDU apdu) {
        byte[] buf = apdu.getBuffer();
        if (Util.getShort(buf, ISO7816.OFFSET_P1) != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        DedicatedFile parent = fs.getCurrentDF();
        fs.check(parent, ISOCMD.AC_APPEND);
        short len = FileSystem.receive(apdu, false);
        short end = (short) (ISO7816.OFFSET_CDATA + len);
        short p = (short) (ISO7816.OFFSET_CDATA + 2);
        byte template = buf[ISO7816.OFFSET_CDATA];
        if ((template != ISOCMD.TAG_FCP && template != ISOCMD.TAG_FCI)
                || buf[(short) (ISO7816.OFFSET_CDATA + 1)] != (byte) (len - 2)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        short size = 0;
        short totalSize = 0;
        short fid = ISOCMD.FID_RFU;
        short recordSize = 0;
        short records = 0;
        short nameOff = -1;
        short acOff = -1;
        byte fdb = 0;
        byte sfi = 0;
        byte nameLen = 0;
        byte lcs = ISOCMD.LCS_ACTIVATED;
        while (p < end) {
            byte tag = buf[p];
            short l = buf[(short) (p + 1)];
            short v = (short) (p + 2);
            p = (short) (v + l);
            if (l < 0 || p > end) { // lengths above 127 (81 xx) are not used by any FCP object here
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
            }
            switch (tag) {
                case ISOCMD.TAG_SIZE:
                    valueLength(l, (short) 2, (short) 2);
                    size = Util.getShort(buf, v);
                    break;
                case TAG_TOTAL_SIZE:
                    valueLength(l, (short) 2, (short) 2);
                    totalSize = Util.getShort(buf, v);
                    break;
                case ISOCMD.TAG_DESCRIPTOR:
                    valueLength(l, (short) 1, (short) 6);
                    fdb = buf[v];
                    if (l == 3) {
                        recordSize = (short) (buf[(short) (v + 2)] & 0xFF);
                    } else if (l >= 4) {
                        recordSize = Util.getShort(buf, (short) (v + 2));
                    }
                    if (l == 5) {
                        records = (short) (buf[(short) (v + 4)] & 0xFF);
                    } else if (l == 6) {
                        records = Util.getShort(buf, (short) (v + 4));
                    }
                    break;
                case ISOCMD.TAG_FID:
                    valueLength(l, (short) 2, (short) 2);
                    fid = Util.getShort(buf, v);
                    break;
                case ISOCMD.TAG_DF_NAME:
                    valueLength(l, (short) 1, (short) 16);
                    nameOff = v;
                    nameLen = (byte) l;
                    break;
                case ISOCMD.TAG_SFI:
                    valueLength(l, (short) 0, (short) 1);
                    if (l == 1) {
                        sfi = buf[v];
                        if ((sfi & 0x07) != 0 || sfi == (byte) 0xF8) {
                            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                        }
                        sfi = (byte) ((sfi >> 3) & 0x1F);
                    }
                    break;
                case ISOCMD.TAG_LCS:
                    valueLength(l, (short) 1, (short) 1);
                    lcs = buf[v];
                    if (lcs != ISOCMD.LCS_CREATION && lcs != ISOCMD.LCS_INITIALISATION
                            && lcs != ISOCMD.LCS_DEACTIVATED && lcs != ISOCMD.LCS_ACTIVATED) {
                        ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                    }
                    break;
                case ISOCMD.TAG_SECURITY:
                    valueLength(l, ISOCMD.AC_COUNT, ISOCMD.AC_COUNT);
                    acOff = v;
                    break;
                default: // other objects are accepted and ignored
                    break;
            }
        }
        if (size == 0) {
            size = totalSize;
        }
        if (fid == ISOCMD.FID_MF || fid == ISOCMD.FID_PATH || fid == ISOCMD.FID_RFU) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        // Sizes by structure; any other descriptor byte is refused.
        if (fdb == ISOCMD.FDB_DF) {
            size = 0;
            sfi = 0;
        } else if (fdb == ISOCMD.FDB_LINEAR_FIXED || fdb == ISOCMD.FDB_CYCLIC) {
            if (records == 0 && recordSize > 0) {
                records = (short) (size / recordSize);
            }
            if (recordSize < 1 || recordSize > 255 || records < 1 || records > 254
                    || records > (short) (32767 / recordSize)) {
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
            }
            size = (short) (recordSize * records);
        } else if (fdb == ISOCMD.FDB_LINEAR_VARIABLE) {
            if (recordSize == 0) {
                recordSize = 255;
            }
            if (recordSize < 1 || recordSize > 255) {
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
            }
        } else if (fdb != ISOCMD.FDB_TRANSPARENT) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        if (fdb != ISOCMD.FDB_DF && size < 1) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        if (parent.findChild(fid) != null || fid == parent.getFID()
                || (sfi != 0 && parent.findSFI(sfi) != null)) {
            ISOException.throwIt(ISOCMD.SW_FILE_EXISTS);
        }
        // The whole tree (from its top, not only this processor's view) counts against the limits.
        ISOFile top = parent;
        while (top.getParent() != null) {
            top = top.getParent();
        }
        short files = 1;
        short bytes = size;
        for (ISOFile f = top; f != null; f = ISOFile.next(f, top)) {
            if (nameOff >= 0 && f instanceof DedicatedFile) {
                byte[] name = ((DedicatedFile) f).getName();
                if (name != null && name.length == nameLen
                        && Util.arrayCompare(name, (short) 0, buf, nameOff, nameLen) == 0) {
                    ISOException.throwIt(ISOCMD.SW_DF_NAME_EXISTS);
                }
            }
            files++;
            bytes += f.getSize();
            if (bytes < 0) {
                bytes = (short) 0x7FFF;
            }
        }
        if (files > fs.getMaxFiles() || bytes > fs.getMaxBytes()
                || (short) (JCSystem.getAvailableMemory(JCSystem.MEMORY_TYPE_PERSISTENT) - MARGIN) < size) {
            ISOException.throwIt(ISO7816.SW_FILE_FULL);
        }
        JCSystem.beginTransaction();
        ISOFile f;
        if (fdb == ISOCMD.FDB_DF) {
            f = new DedicatedFile(fid, nameOff < 0 ? null : buf, nameOff, nameLen);
        } else if (fdb == ISOCMD.FDB_TRANSPARENT) {
            f = new TransparentFile(fid, sfi, size);
        } else if (fdb == ISOCMD.FDB_LINEAR_FIXED) {
            f = new RecordFile(fid, sfi, recordSize, (byte) records);
        } else if (fdb == ISOCMD.FDB_CYCLIC) {
            f = new CyclicRecordFile(fid, sfi, recordSize, (byte) records);
        } else {
            f = new VariableRecordFile(fid, sfi, recordSize, size);
        }
        f.setLifeCycle(lcs);
        if (acOff >= 0) {
            f.setAccess(buf[acOff], buf[(short) (acOff + 1)], buf[(short) (acOff + 2)],
                    buf[(short) (acOff + 3)], buf[(short) (acOff + 4)]);
        } else {
            // Without tag 86 every operation needs what creating the file needed.
            byte c = parent.getAccess(ISOCMD.AC_APPEND);
            f.setAccess(c, c, c, c, c);
        }
        parent.addChild(f);
        JCSystem.commitTransaction();
        fs.makeCurrent(f);
    }

    /** 6A80 unless min <= l <= max. */
    private static void valueLength(short l, short min, short max) {
        if (l < min || l > max) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
    }
}

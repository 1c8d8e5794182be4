"""DICOM files made from scratch for tests (pydicom): the boilerplate every one needs."""
from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def new_dataset(sop_class_uid: str, modality: str) -> Dataset:
    """An Explicit VR Little Endian dataset of SOP_CLASS_UID with its file meta, a new SOP instance,
    study and series, patient 'Synthetic^Test'; the caller adds the image module."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class_uid, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = modality, "Synthetic^Test", "SYNTHETIC"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    return ds
